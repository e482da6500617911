#!/usr/bin/env bash
# Installs SoftHSM2 (and opensc's pkcs11-tool) if missing and sets up private tokens with the
# esdk-pkcs11 test keys, in a temporary directory (SOFTHSM2_CONF points at a private config;
# nothing global is touched). Prints `export VAR=...` lines on stdout; logs go to stderr:
#
#   eval "$(scripts/pkcs11-softhsm.sh)"        # then: cargo test --workspace --test token_aes ...
#
# Tokens (user PIN 1234, SO PIN 12345678; no label is a prefix of another, because
# pkcs11-tool --token-label matches prefixes):
#   esdk-test       AES-256 key "esdk-aes256" (id 01, known value) and an RSA-2048 key pair
#                   "esdk-rsa" (id 02, known PEM) for round trips and cross-decryption
#   wrong-pin-test  for the wrong-PIN test (no other test logs in to it)
#   removal-test    holds the same AES key; the removed-token test deletes it while open
#   reinit-test     holds the same AES key; the re-initialization test initializes it anew in
#                   place and deletes it while open, through $PKCS11_TEST_DIR/reinit-token.sh
#                   (which imports the AES key again), then creates it in the free slot
#
# Environment (all optional):
#   PKCS11_TEST_DIR      private directory for the tokens and keys (default: a new mktemp -d)
#   PKCS11_TEST_AES_KEY  AES-256 key (hex) to import; default: random
#   PKCS11_TEST_RSA_PEM  RSA private key (PEM) to import; default: a new 2048-bit key
set -euo pipefail
log() { echo "pkcs11-softhsm: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

module=/usr/lib/softhsm/libsofthsm2.so
need_pkgs=()
{ command -v softhsm2-util >/dev/null && [ -e "$module" ]; } || need_pkgs+=(softhsm2)
command -v pkcs11-tool >/dev/null || need_pkgs+=(opensc)
command -v openssl >/dev/null || need_pkgs+=(openssl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  command -v apt-get >/dev/null || die "apt-get not found; install ${need_pkgs[*]} by hand"
  apt-get update -qq >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2 \
    || die "apt-get install ${need_pkgs[*]} failed"
fi
[ -e "$module" ] || die "$module missing after installing softhsm2"

dir=${PKCS11_TEST_DIR:-$(mktemp -d /tmp/esdk-softhsm.XXXXXX)}
mkdir -p "$dir"
chmod 700 "$dir"
rm -rf "$dir/tokens"
mkdir -p "$dir/tokens"
cat > "$dir/softhsm2.conf" <<EOF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
export SOFTHSM2_CONF="$dir/softhsm2.conf"
so_pin=12345678
pin=1234
for label in esdk-test wrong-pin-test removal-test reinit-test; do
  softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin" >/dev/null \
    || die "softhsm2-util --init-token --label $label failed"
done

aes_hex=${PKCS11_TEST_AES_KEY:-$(openssl rand -hex 32)}
python3 -c "import sys;open(sys.argv[1],'wb').write(bytes.fromhex(sys.argv[2]))" "$dir/aes.bin" "$aes_hex" \
  || die "bad PKCS11_TEST_AES_KEY"
if [ -n "${PKCS11_TEST_RSA_PEM:-}" ]; then
  cp "$PKCS11_TEST_RSA_PEM" "$dir/rsa.pem"
else
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/rsa.pem" 2>/dev/null \
    || die "openssl genpkey failed"
fi
openssl pkey -in "$dir/rsa.pem" -pubout -out "$dir/rsa.pub.pem" || die "openssl pkey -pubout failed"

p11() { pkcs11-tool --module "$module" --login --pin "$pin" "$@" >/dev/null 2>&1; }
for label in esdk-test removal-test reinit-test; do
  p11 --token-label "$label" --write-object "$dir/aes.bin" --type secrkey --key-type AES:32 \
    --label esdk-aes256 --id 01 --sensitive || die "importing the AES key into $label failed"
done
p11 --token-label esdk-test --write-object "$dir/rsa.pem" --type privkey --label esdk-rsa --id 02 \
  --usage-decrypt --sensitive || die "importing the RSA private key failed"
p11 --token-label esdk-test --write-object "$dir/rsa.pub.pem" --type pubkey --label esdk-rsa --id 02 \
  --usage-decrypt || die "importing the RSA public key failed"
rm -f "$dir/aes.bin"
# Initializes reinit-test anew under a running test and imports the AES key again (from
# ESDK_TEST_PKCS11_AES_KEY, which the test has): `in-place` keeps its slot (C_InitToken on it);
# `delete` only deletes it. (A token created by another process after C_Initialize stays
# invisible to SoftHSM2 2.6.1 in the running process, so the test creates it again itself.)
cat > "$dir/reinit-token.sh" <<REINIT
#!/usr/bin/env bash
set -euo pipefail
export SOFTHSM2_CONF='$dir/softhsm2.conf'
label=reinit-test
case "\$1" in
  in-place) softhsm2-util --init-token --token "\$label" --label "\$label" --so-pin $so_pin --pin $pin ;;
  delete) softhsm2-util --delete-token --token "\$label"; exit 0 ;;
  *) echo "usage: \$0 in-place|delete" >&2; exit 2 ;;
esac
key='$dir/reinit-aes.bin'
python3 -c "import sys;open(sys.argv[1],'wb').write(bytes.fromhex(sys.argv[2]))" "\$key" "\$ESDK_TEST_PKCS11_AES_KEY"
pkcs11-tool --module '$module' --login --pin $pin --token-label "\$label" --write-object "\$key" \\
  --type secrkey --key-type AES:32 --label esdk-aes256 --id 01 --sensitive
rm -f "\$key"
REINIT
chmod 700 "$dir/reinit-token.sh"
log "tokens esdk-test, wrong-pin-test, removal-test, reinit-test ready in $dir"

cat <<EOF
export SOFTHSM2_CONF='$dir/softhsm2.conf'
export TEST_PKCS11_MODULE='$module'
export ESDK_TEST_PKCS11_TOKEN='esdk-test'
export ESDK_TEST_PKCS11_PIN='$pin'
export ESDK_TEST_PKCS11_AES_LABEL='esdk-aes256'
export ESDK_TEST_PKCS11_AES_ID='01'
export ESDK_TEST_PKCS11_AES_KEY='$aes_hex'
export ESDK_TEST_PKCS11_RSA_LABEL='esdk-rsa'
export ESDK_TEST_PKCS11_RSA_PEM='$dir/rsa.pem'
export ESDK_TEST_PKCS11_RSA_PUB_PEM='$dir/rsa.pub.pem'
export ESDK_TEST_PKCS11_OAEP_HASHES='sha1'
export ESDK_TEST_PKCS11_TOKEN_IV=''
export ESDK_TEST_PKCS11_PIN_TOKEN='wrong-pin-test'
export ESDK_TEST_PKCS11_REMOVE_TOKEN='removal-test'
export ESDK_TEST_PKCS11_REMOVE_CMD='softhsm2-util --delete-token --token removal-test'
export ESDK_TEST_PKCS11_SO_PIN='$so_pin'
export ESDK_TEST_PKCS11_REINIT_TOKEN='reinit-test'
export ESDK_TEST_PKCS11_REINIT_CMD='$dir/reinit-token.sh'
export ESDK_TEST_PKCS11_DIR='$dir'
EOF
