# shellcheck shell=bash
# Certificates for the benchmarks that use TLS over loopback (sourced).

# A CA, the receiver's certificate for 127.0.0.1, the sender's.
make_pki() {
	local d=$1 n
	mkdir -p "$d" || return 1
	for n in ca dst src; do
		certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 \
			--outfile "$d/$n-key.pem" >/dev/null 2>&1 || return 1
	done
	printf 'cn = bench CA\nca\ncert_signing_key\nexpiration_days = 2\n' >"$d/ca.tmpl"
	certtool --generate-self-signed --template "$d/ca.tmpl" --load-privkey "$d/ca-key.pem" \
		--outfile "$d/ca.pem" >/dev/null 2>&1 || return 1
	for n in dst src; do
		printf 'cn = %s\nip_address = 127.0.0.1\ntls_www_server\ntls_www_client\nsigning_key\nexpiration_days = 2\n' \
			"$n" >"$d/$n.tmpl"
		certtool --generate-certificate --template "$d/$n.tmpl" --load-privkey "$d/$n-key.pem" \
			--load-ca-certificate "$d/ca.pem" --load-ca-privkey "$d/ca-key.pem" \
			--outfile "$d/$n.pem" >/dev/null 2>&1 || return 1
	done
}
