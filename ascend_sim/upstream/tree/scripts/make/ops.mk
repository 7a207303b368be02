# SIMULATOR (ascend-fa): compiles the simulated ops-transformer custom package.
# The real repo drives cmake; this GNU make file does the same job for the simulator: one object per
# translation unit (so `build.sh -j<N>` parallelises like the real build) linked into the three
# libraries of a custom operator package. Invoked by build.sh, which passes:
#   ROOT BUILD_DIR VENDOR_DIR ARCH OPT_FLAGS OP_DIRS [VERBOSE=1]

CC := bisheng
Q := $(if $(VERBOSE),,@)
CFLAGS := -std=gnu11 -fPIC -fvisibility=hidden $(OPT_FLAGS) -Wall -Wextra -Wno-unused-parameter \
          -ffile-prefix-map=$(ROOT)=.
INCLUDES := -I$(BUILD_DIR)/gen -I$(ROOT)/common/include \
            $(foreach d,$(OP_DIRS),-I$(ROOT)/$(d)/op_host -I$(ROOT)/$(d)/op_host/op_api -I$(ROOT)/$(d)/op_kernel)

OPAPI_SRCS := $(ROOT)/common/src/package_info.c \
              $(foreach d,$(OP_DIRS),$(sort $(wildcard $(ROOT)/$(d)/op_kernel/*.c))) \
              $(sort $(wildcard $(BUILD_DIR)/gen/kernels/*.c))
TILING_SRCS := $(ROOT)/common/src/opmaster_info.c \
               $(foreach d,$(OP_DIRS),$(sort $(wildcard $(ROOT)/$(d)/op_host/*_tiling*.c)))
PROTO_SRCS := $(ROOT)/common/src/op_registry.c \
              $(foreach d,$(OP_DIRS),$(sort $(wildcard $(ROOT)/$(d)/op_host/*_def.c)))

obj = $(patsubst $(ROOT)/%.c,$(BUILD_DIR)/obj/%.o,$(1))

OPAPI_LIB := $(VENDOR_DIR)/op_api/lib/libcust_opapi.so
TILING_LIB := $(VENDOR_DIR)/op_impl/ai_core/tbe/op_tiling/lib/linux/$(ARCH)/libcust_opmaster_rt2.0.so
PROTO_LIB := $(VENDOR_DIR)/op_proto/lib/linux/$(ARCH)/libcust_opsproto_rt2.0.so

.PHONY: all
all: $(OPAPI_LIB) $(TILING_LIB) $(PROTO_LIB)

$(BUILD_DIR)/obj/%.o: $(ROOT)/%.c
	@mkdir -p $(@D)
	@echo "Building C object $*.o"
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -c $< -o $@

$(OPAPI_LIB): $(call obj,$(OPAPI_SRCS))
	@mkdir -p $(@D)
	@echo "Linking C shared library $(notdir $@)"
	$(Q)$(CC) -shared -o $@ $^ -lm -lpthread -ldl

$(TILING_LIB): $(call obj,$(TILING_SRCS))
	@mkdir -p $(@D)
	@echo "Linking C shared library $(notdir $@)"
	$(Q)$(CC) -shared -o $@ $^

$(PROTO_LIB): $(call obj,$(PROTO_SRCS))
	@mkdir -p $(@D)
	@echo "Linking C shared library $(notdir $@)"
	$(Q)$(CC) -shared -o $@ $^
