# tls_certs DIR CN-OF-CA SAN: a CA and, signed by it, a server and a client pair in DIR, in
# QEMU's x509 layout (ca-cert.pem, server-cert.pem, server-key.pem, client-cert.pem,
# client-key.pem) with the extensions QEMU checks (docs/security.md has the same recipe).
# SAN: the server's subjectAltName, e.g. "IP:10.0.0.2,DNS:localhost".
tls_certs() {
	local d=$1 ca=$2 san=$3 role usage
	mkdir -p "$d" && chmod 700 "$d" || return 1
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$ca" \
		-keyout "$d/ca-key.pem" -out "$d/ca-cert.pem" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || return 1
	for role in server client; do
		if [ $role = server ]; then usage="serverAuth"; else usage="clientAuth"; fi
		openssl req -newkey rsa:2048 -nodes -subj "/CN=godwit $role" \
			-keyout "$d/$role-key.pem" -out "$d/$role.csr" 2>/dev/null || return 1
		printf '%s\n' "basicConstraints=critical,CA:FALSE" \
			"keyUsage=critical,digitalSignature,keyEncipherment" \
			"extendedKeyUsage=$usage" ${san:+"subjectAltName=$san"} >"$d/$role.ext"
		openssl x509 -req -in "$d/$role.csr" -CA "$d/ca-cert.pem" -CAkey "$d/ca-key.pem" \
			-CAcreateserial -days 30 -extfile "$d/$role.ext" \
			-out "$d/$role-cert.pem" 2>/dev/null || return 1
		rm -f "$d/$role.csr" "$d/$role.ext"
	done
	chmod 600 "$d"/*-key.pem
}
