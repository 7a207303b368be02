#!/bin/sh
# Self-extractable archive made by the ascend-fa SIMULATOR (stand-in for CANN's patched makeself 2.5.0).
# Header options: --check, --list, --info, --help, --extract=<dir>, --quiet. Any other argument must be
# an option named in help.info (compared up to '='), else the help is printed and the .run exits 1, as
# Huawei's modified makeself header does (Script_Args_Check, e.g. mindspore-ai/mindspore
# .../custom_compiler/cmake/util/makeself/makeself-header.sh); accepted ones go to ./install.sh, e.g.
#   ./cann-ops-transformer-<vendor>_linux-<arch>.run --quiet --install-path=/opt/opp
LABEL="@LABEL@"
SHA256="@SHA256@"
PAYLOAD_BYTES=@PAYLOAD_BYTES@
HEADER_LINES=@HEADER_LINES@
ARCHIVE="$0"
QUIET=n

payload() {
    tail -n +"$((HEADER_LINES + 1))" "$ARCHIVE"
}

verify() {
    [ "$QUIET" = y ] || printf 'Verifying archive integrity...'
    sum=$(payload | sha256sum | cut -d' ' -f1)
    if [ "$sum" != "$SHA256" ]; then
        [ "$QUIET" = y ] || echo
        echo "Error in SHA256 checksums: $sum is different from $SHA256" >&2
        exit 2
    fi
    [ "$QUIET" = y ] || echo '  100%   SHA256 checksums are OK. All good.'
}

# the options help.info names (each `--name` up to '='); an argument is accepted when its part before '='
# is one of them
script_arg_ok() {
    supported=$(payload | tar xzf - -O ./help.info 2>/dev/null | grep -o -E -e '--[^ ]+' | cut -d= -f1)
    wanted=$(printf '%s' "$1" | cut -d= -f1)
    for opt in $supported; do
        [ "$opt" = "$wanted" ] && return 0
    done
    return 1
}

print_help() {
    echo "Makeself-style self-extractable archive (ascend-fa simulator), $LABEL"
    echo "  --check            verify the embedded SHA256 and exit"
    echo "  --list             list the files of the archive"
    echo "  --info             print information about the archive"
    echo "  --extract=<dir>    extract the files to <dir> and exit, without installing"
    echo "  --quiet            quiet installation"
    echo "  --help             this text, then the installer's options:"
    payload | tar xzf - -O ./help.info 2>/dev/null
}

ACTION=run
TARGET=""
for arg do
    shift
    case "$arg" in
        --check) ACTION=check ;;
        --list) ACTION=list ;;
        --info) ACTION=info ;;
        --help|-h) ACTION=help ;;
        --extract=*) ACTION=extract; TARGET="${arg#*=}" ;;
        --quiet) QUIET=y; set -- "$@" "$arg" ;;
        *)
            if ! script_arg_ok "$arg"; then
                ACTION=badarg
            fi
            set -- "$@" "$arg"
            ;;
    esac
done

case "$ACTION" in
    check)
        verify
        exit 0
        ;;
    list)
        payload | tar tzvf -
        exit $?
        ;;
    info)
        echo "Identification: $LABEL"
        echo "Target directory: (temporary)"
        echo "Uncompressed payload: gzip, $PAYLOAD_BYTES bytes compressed"
        echo "SHA256: $SHA256"
        echo "Script run after extraction: ./install.sh"
        exit 0
        ;;
    help)
        print_help
        exit 0
        ;;
    badarg)
        print_help
        exit 1
        ;;
    extract)
        verify
        mkdir -p "$TARGET" || exit 1
        payload | tar xzf - -C "$TARGET" || exit 1
        [ "$QUIET" = y ] || echo "Extracted to $TARGET"
        exit 0
        ;;
esac

verify
WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/selfgz.XXXXXX") || exit 1
trap 'rm -rf "$WORKDIR"' EXIT
[ "$QUIET" = y ] || printf 'Uncompressing %s' "$LABEL"
if ! payload | tar xzf - -C "$WORKDIR"; then
    echo "Error: extraction failed" >&2
    exit 1
fi
[ "$QUIET" = y ] || echo '  100%'
cd "$WORKDIR" || exit 1
bash ./install.sh "$@"
rc=$?
cd / || true
exit $rc
