#!/bin/sh
# tools/make_test_cert.sh — makes a self-signed certificate and key for testing shoald's HTTPS
# tracker on this machine: DIR/cert.pem and DIR/key.pem (mode 600), valid 30 days for
# 127.0.0.1, ::1 and localhost. Never use it for a public tracker.
#   usage: tools/make_test_cert.sh DIR [NAME]   (NAME: CN and file prefix, default "shoal-test")
# Then set https.certificate = "DIR/cert.pem" and https.private_key = "DIR/key.pem", and tell
# clients to trust DIR/cert.pem (curl --cacert, aria2c --ca-certificate) or not to verify.
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DIR [NAME]" >&2
  exit 2
fi
dir=$1
name=${2:-shoal-test}
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=$name" \
  -addext "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 644 "$dir/cert.pem"
echo "$dir/cert.pem"
echo "$dir/key.pem"
