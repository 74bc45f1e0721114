#!/bin/sh
# Writes Redis's ACL file of the relay's users from users.acl.template: each @VARIABLE@ becomes
# the SHA-256 of that environment variable's value (Redis's "#<hash>" form: the file holds no
# password). Refuses a password that is unset, empty, shorter than 16 characters, not letters
# and digits (it goes into the components' Redis URLs) or the examples' change-me, naming it.
#   REDIS_WORKER_PASSWORD=... ... sh render-acl.sh users.acl.template > users.acl
set -eu
template=${1:-$(dirname "$0")/users.acl.template}
script=""
for name in $(grep -o '@[A-Z_]*@' "$template" | tr -d @ | sort -u); do
    value=$(printenv "$name" || true)
    case "$value" in
        "" | *change-me* | *changeme*)
            echo "render-acl.sh: set $name to the password of its Redis user" >&2
            exit 2 ;;
    esac
    if [ "${#value}" -lt 16 ]; then
        echo "render-acl.sh: $name is shorter than 16 characters" >&2
        exit 2
    fi
    case "$value" in
        *[!A-Za-z0-9]*)
            echo "render-acl.sh: $name must be letters and digits only (it goes into URLs)" >&2
            exit 2 ;;
    esac
    hash=$(printf %s "$value" | sha256sum | cut -d ' ' -f 1)
    script="$script s/@$name@/$hash/g;"
done
# Redis refuses comments in an ACL file: the template's go.
sed -e "$script" -e "/^#/d" -e "/^$/d" "$template"
