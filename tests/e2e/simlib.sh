# shellcheck shell=sh
# shellcheck disable=SC2034 # sim_init sets variables for the simulator
#
# tests/e2e/simlib.sh: what the two device simulators (devsim.sh,
# otasim.sh) share.  Sourced, not run; POSIX sh, like them built on curl,
# openssl, xmllint and a third-party SCEP client only.
#
#   sim_init NAME DIR URL ROOT_PEM TLS_CA UDID
#       sets sim_name, dir, url, root, tls_ca, udid and here (this
#       directory); makes DIR and enters it
#   sim_die MESSAGE: "NAME: MESSAGE" on stderr, exit 1
#   sim_payload FILE TYPE KEY: the value after <key>KEY</key> in the
#       plist FILE's dict whose PayloadType is TYPE
#   sim_content FILE TYPE KEY: the same inside that dict's PayloadContent
#       dict (the SCEP and Profile Service payloads)
#   sim_plist FILE: writes to FILE a plist document whose top-level dict
#       holds the lines read from stdin
#   sim_scep CLIENT SCEP_URL CHALLENGE CN: the identity cert.pem/key.pem
#       over SCEP with CLIENT (scepclient or certmonger); log in scep.log

sim_init() {
	sim_name=$1
	dir=$2
	url=$3
	root=$4
	tls_ca=$5
	udid=$6
	here=$(cd "$(dirname "$0")" && pwd)
	mkdir -p "$dir"
	cd "$dir" || sim_die "cannot enter $dir"
}

sim_die() {
	echo "$sim_name: $*" >&2
	exit 1
}

sim_payload() {
	xmllint --nonet --xpath "string(//dict[key[.='PayloadType']/following-sibling::*[1][.='$2']]/key[.='$3']/following-sibling::*[1])" "$1"
}

sim_content() {
	xmllint --nonet --xpath "string(//dict[key[.='PayloadType']/following-sibling::*[1][.='$2']]/key[.='PayloadContent']/following-sibling::dict[1]/key[.='$3']/following-sibling::*[1])" "$1"
}

sim_plist() {
	{
		echo '<?xml version="1.0" encoding="UTF-8"?>'
		echo '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">'
		echo '<plist version="1.0">'
		echo '<dict>'
		cat
		echo '</dict>'
		echo '</plist>'
	} >"$1"
}

sim_scep() {
	case $1 in
	scepclient)
		openssl genrsa -traditional -out key.pem 2048 2>/dev/null
		scepclient -server-url "$2" -challenge "$3" -private-key key.pem \
			-certificate cert.pem -cn "$4" >scep.log 2>&1 ||
			sim_die "scepclient failed: $(tail -3 scep.log)"
		;;
	certmonger)
		sh "$here/certmonger.sh" "$dir" "$2" "$3" >scep.log 2>&1 ||
			sim_die "certmonger failed: $(tail -3 scep.log)"
		;;
	*)
		sim_die "unknown SCEP client $1"
		;;
	esac
	[ -s cert.pem ] && [ -s key.pem ] || sim_die "SCEP gave no identity"
}
