# SIMULATOR (ascend-fa): version of the simulated ops-transformer, in the form the real repo uses
# from tag v9.0.0 on. make_repo.py rewrites the version per tag.
set_package(ops-transformer VERSION "9.0.1")
set_build_dependencies(runtime ">=8.5")
set_build_dependencies(opbase ">=8.5")
set_run_dependencies(runtime ">=8.5")
