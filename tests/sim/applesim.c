/*
 * applesim: the project's stand-in for an iPhone and a Mac, for the
 * end-to-end tests (tests/e2e/applesim_e2e.c) and for trying a server by
 * hand.  Every message has the shape of a real capture in
 * ../shared/vectors (named where it is built), not the shape our server
 * finds convenient, and is built with OpenSSL, libcurl and libxml2 alone,
 * never with libmdm.
 *
 *   applesim STEP... --dir DIR [options]
 *
 * Steps, in the order a device goes through them (run several in one
 * call, or one per call: the device's state stays in DIR):
 *
 *   profile           GET the enrollment profile (--enroll-url), verify its
 *                     CMS signature to --trust, read the identity (SCEP or
 *                     ACME) and MDM payloads
 *   scep              GetCACaps, GetCACert, PKCSReq signed by a throw-away
 *                     self-signed certificate of its own key; identity.pem/.key
 *   acme              the ACME payload's identity (RFC 8555, device-attest-01):
 *                     a P-384 "Secure Enclave" key attested by the stand-in for
 *                     Apple's attestation service (--attest-standin PROGRAM
 *                     --attest-dir DIR); identity.pem/.key, acme-chain.pem
 *   identity          scep or acme, as the profile's identity payload says
 *   authenticate      check-in Authenticate
 *   tokenupdate       check-in TokenUpdate (device channel)
 *   user-authenticate UserAuthenticate (Mac user channel)
 *   user-tokenupdate  TokenUpdate of the Mac's console user
 *   commands          Idle, then answer every command until an empty 200
 *   renew             RenewalReq signed by the identity, a CSR of a new key
 *   checkout          check-in CheckOut
 *   sign              the Mdm-Signature over --body FILE, as DIR/mdm-signature.der
 *   ddm               a Declarative Management sync, as a device does it after a
 *                     DeclarativeManagement command: tokens, declaration-items,
 *                     each new or changed declaration (DIR/ddm-KIND-ID.json),
 *                     then a full StatusReport of them (status); DIR/ddm.log
 *                     says "fetched|kept|removed KIND ID TOKEN"
 *   ddm-endpoint      one DeclarativeManagement check-in to --endpoint E (Data:
 *                     --body FILE); its HTTP status and body in DIR/ddm-answer,
 *                     whatever the status
 *   return-to-service the ReturnToService check-in (iOS 26); the answer's keys
 *                     in DIR/rts-answer ("Enabled 1", "WiFiProfileData N" bytes...)
 *   get-token         GetToken (com.apple.maid); status and body in
 *                     DIR/gettoken-answer, whatever the status
 *   enroll            = profile identity authenticate tokenupdate (+ the user
 *                       channel on a Mac)
 *   lifecycle         = enroll commands renew tokenupdate commands checkout
 *                       (an ACME identity: enroll commands checkout)
 *
 * Options (saved in DIR/state by the first step that gets them):
 *   --device iphone|mac   (default iphone)
 *   --udid U              (default: a new one of the device's form)
 *   --enroll-url URL --trust PEM (the root the profile's signature chains to)
 *   --profile-file F      the signed profile from a file instead of --enroll-url
 *   --tls-ca PEM          a CA the device's system store holds; optional: the
 *                         MDM URLs are trusted through the profile's trust
 *                         anchor payloads (com.apple.security.root/.pem) and
 *                         this; without either, through the system's store
 *                         only, so a private CA is refused as by a device.
 *                         When the MDM payload pins (ServerURLPinning-/
 *                         CheckInURLPinningCertificateUUIDs), that URL's chain
 *                         must also hold one of the pinned anchor payloads'
 *                         certificates, whatever --tls-ca trusts
 *   --auth profile|tls|signature|both   profile (default): TLS client
 *                         certificate always, and Mdm-Signature when the
 *                         profile says SignMessage, as a device does
 *   --sig-digest sha1|sha256   Mdm-Signature digest (iphone sha1, as the
 *                         real header; mac sha256)
 *   --scep-get            PKIOperation by GET even when POST is offered
 *   --vectors DIR         answer commands with the real captured plists
 *                         (default $MDM_VECTORS; without: own templates)
 * Negative SCEP cases (scep step; nothing is saved):
 *   --challenge C  --digest md5|sha1|...  --tamper-csr
 *   --transaction-id ID   --expect-failure badAlg|badMessageCheck|badRequest|...
 * Negative ACME cases (acme step; nothing is saved):
 *   --acme-expect order|challenge|finalize:TYPE   want that ACME error there
 *   --attest-token T  --csr-other-key
 * Command answers (commands step):
 *   --notnow TYPE  --error TYPE   the first command of that RequestType is
 *                         answered NotNow (it comes back on a later Idle) or
 *                         Error (with an ErrorChain)
 *
 * DIR holds profile.der/.plist, ca.pem, identity.pem/.key (identity-N.* the
 * ones renewed away), scep-signer.pem/.key, csr.der, state, commands.log
 * ("UUID RequestType Status" lines), acks.log (in order, "UUID delivered"
 * when a command arrives and "UUID answered HTTP-STATUS" when the server
 * answers its report: 200 means it stored it) and log/NNN-* (every request
 * and answer).  Exit status 0 when every step did what a device expects.
 */
#include "sim.h"

#include <curl/curl.h>
#include <getopt.h>
#include <libxml/parser.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CHECKIN_CTYPE "application/x-apple-aspen-mdm-checkin"
#define SERVER_CTYPE  "application/x-apple-aspen-mdm; charset=UTF-8"
#define MAX_ROUNDS    64 /* commands in one connection burst */

static struct {
	const char *dir, *device, *udid, *enroll_url, *trust, *tls_ca, *auth, *sig_digest;
	const char *profile_file;
	const char *vectors, *challenge, *digest, *txid, *expect_failure, *notnow, *error, *body;
	const char *endpoint;
	const char *attest_standin, *attest_dir, *acme_expect, *attest_token;
	int scep_get, tamper_csr, csr_other_key;
} opt;

static int is_mac(void)
{
	return strcmp(sim_state_need("device"), "mac") == 0;
}

/* An option given now wins and is remembered; else the remembered one; else dflt. */
static const char *setting(const char *key, const char *given, const char *dflt)
{
	if (given != NULL)
		sim_state_set(key, given);
	else if (sim_state_get(key) == NULL && dflt != NULL)
		sim_state_set(key, dflt);
	return sim_state_get(key);
}

/* ---------------------------------------------------------------- profile */

static xmlNodePtr payload_of_type(xmlNodePtr top, const char *type)
{
	xmlNodePtr content = sim_plist_get(top, "PayloadContent"), p;

	if (!sim_plist_is(content, "array"))
		sim_fail("profile: no PayloadContent array (EncryptedPayloadContent is not "
		         "expected in an enrollment profile)");
	for (p = content->children; p != NULL; p = p->next) {
		char *t;
		int same;

		if (p->type != XML_ELEMENT_NODE)
			continue;
		t = sim_plist_string(sim_plist_get(p, "PayloadType"));
		same = t != NULL && strcmp(t, type) == 0;
		free(t);
		if (same)
			return p;
	}
	return NULL;
}

static char *need_string(xmlNodePtr dict, const char *key, const char *what)
{
	char *s = sim_plist_string(sim_plist_get(dict, key));

	if (s == NULL || *s == '\0')
		sim_fail("profile: the %s payload has no %s string", what, key);
	return s;
}

static void set_from(const char *key, xmlNodePtr dict, const char *pkey, const char *what)
{
	char *s = need_string(dict, pkey, what);

	sim_state_set(key, s);
	free(s);
}

/* The CMS signature of the profile, to the root the device was told to trust. */
static struct sim_buf profile_verify(const struct sim_buf *der)
{
	const unsigned char *p = der->p;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)der->len);
	X509_STORE *store = X509_STORE_new();
	BIO *out = BIO_new(BIO_s_mem());
	struct sim_buf content = {NULL, 0};
	char *data;
	long n;

	if (cms == NULL || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
		sim_fail("profile: not a CMS SignedData (a signed .mobileconfig)");
	if (X509_STORE_load_file(store, opt.trust) != 1)
		sim_ossl_fail("X509_STORE_load_file (--trust)");
	if (!CMS_verify(cms, NULL, store, NULL, out, CMS_BINARY))
		sim_ossl_fail("CMS_verify of the profile to --trust");
	n = BIO_get_mem_data(out, &data);
	sim_buf_append(&content, data, n > 0 ? (size_t)n : 0);
	BIO_free(out);
	X509_STORE_free(store);
	CMS_ContentInfo_free(cms);
	return content;
}

/*
 * The trust anchor payloads (com.apple.security.root: a DER certificate;
 * com.apple.security.pem: PEM), each a CA certificate or the device
 * refuses the profile, into DIR/anchors.pem: what the device trusts for
 * the MDM URLs beside its system store.  Their PayloadUUIDs in state
 * anchor_uuids (space-separated).  Returns how many.
 */
/*
 * The certificate of payload p when it is a trust anchor payload
 * (com.apple.security.root or .pem), checked as a device checks it;
 * NULL for any other payload.
 */
static X509 *anchor_cert(xmlNodePtr p)
{
	char *t = sim_plist_string(sim_plist_get(p, "PayloadType"));
	int root = t != NULL && strcmp(t, "com.apple.security.root") == 0;
	struct sim_buf d;
	X509 *x = NULL;

	if (t == NULL || (!root && strcmp(t, "com.apple.security.pem") != 0)) {
		free(t);
		return NULL;
	}
	d = sim_plist_data(sim_plist_get(p, "PayloadContent"));
	if (root) {
		const unsigned char *q = d.p;
		x = d.len > 0 ? d2i_X509(NULL, &q, (long)d.len) : NULL;
		if (x != NULL && q != d.p + d.len) {
			X509_free(x);
			x = NULL;
		}
	} else if (d.len > 0) {
		BIO *b = BIO_new_mem_buf(d.p, (int)d.len);
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if (x == NULL)
		sim_fail("profile: a %s payload whose PayloadContent is not one certificate", t);
	if (X509_check_ca(x) < 1)
		sim_fail("profile: the %s payload is not a CA certificate", t);
	if (root && X509_check_issued(x, x) != X509_V_OK)
		sim_fail("profile: the com.apple.security.root payload is not self-signed");
	sim_buf_free(&d);
	free(t);
	return x;
}

static int profile_anchors(xmlNodePtr top)
{
	xmlNodePtr content = sim_plist_get(top, "PayloadContent");
	char uuids[16 * 40] = "";
	BIO *all = BIO_new(BIO_s_mem());
	int n = 0;
	char *pem;
	long len;

	for (xmlNodePtr p = content->children; p != NULL; p = p->next) {
		char *u;
		X509 *x;

		if (p->type != XML_ELEMENT_NODE || (x = anchor_cert(p)) == NULL)
			continue;
		PEM_write_bio_X509(all, x);
		u = need_string(p, "PayloadUUID", "certificate");
		if (++n > 16)
			sim_fail("profile: more than 16 certificate payloads");
		if (uuids[0] != '\0')
			strcat(uuids, " ");
		strncat(uuids, u, 36);
		free(u);
		X509_free(x);
	}
	len = BIO_get_mem_data(all, &pem);
	if (n > 0)
		sim_file_write(sim_path("anchors.pem"), pem, (size_t)len);
	else
		unlink(sim_path("anchors.pem"));
	BIO_free(all);
	sim_state_seti("anchors", n);
	sim_state_set("anchor_uuids", uuids);
	return n;
}

/*
 * Certificate pinning (com.apple.mdm.yaml: ServerURLPinningCertificateUUIDs,
 * CheckInURLPinningCertificateUUIDs): the certificate payloads that key of
 * the MDM payload names, into DIR/pins-NAME.pem, state pins_NAME its path
 * ("" when the key is absent or empty: no pinning for that URL).  The
 * device then accepts the server at that URL only when the chain it
 * evaluated holds one of them, whatever else it trusts (mdm_put).  A UUID
 * that names no certificate payload of the profile: the device refuses
 * the profile.
 */
static void profile_pins(xmlNodePtr top, xmlNodePtr mdm, const char *key, const char *name)
{
	xmlNodePtr uuids = sim_plist_get(mdm, key), content = sim_plist_get(top, "PayloadContent");
	char file[64], state[64];
	BIO *all;
	char *pem;
	long len;
	int n = 0;

	snprintf(file, sizeof(file), "pins-%s.pem", name);
	snprintf(state, sizeof(state), "pins_%s", name);
	unlink(sim_path(file));
	sim_state_set(state, "");
	if (uuids == NULL)
		return;
	if (!sim_plist_is(uuids, "array"))
		sim_fail("profile: %s is not an array (com.apple.mdm.yaml)", key);
	all = BIO_new(BIO_s_mem());
	for (xmlNodePtr u = uuids->children; u != NULL; u = u->next) {
		char *want;
		X509 *x = NULL;

		if (u->type != XML_ELEMENT_NODE)
			continue;
		if ((want = sim_plist_string(u)) == NULL)
			sim_fail("profile: %s holds a non-string", key);
		for (xmlNodePtr p = content->children; p != NULL && x == NULL; p = p->next) {
			char *id;

			if (p->type != XML_ELEMENT_NODE)
				continue;
			id = sim_plist_string(sim_plist_get(p, "PayloadUUID"));
			if (id != NULL && strcmp(id, want) == 0 && (x = anchor_cert(p)) == NULL)
				sim_fail("profile: %s names %s, a payload that is no certificate",
				        key, want);
			free(id);
		}
		if (x == NULL)
			sim_fail("profile: %s names %s, which no payload of the profile has", key,
			        want);
		PEM_write_bio_X509(all, x);
		X509_free(x);
		free(want);
		n++;
	}
	len = BIO_get_mem_data(all, &pem);
	if (n > 0) {
		sim_file_write(sim_path(file), pem, (size_t)len);
		sim_state_set(state, sim_path(file));
	}
	BIO_free(all);
}

/*
 * What the device trusts for the MDM URLs: the profile's anchors, and
 * --tls-ca (standing for a publicly trusted CA in the device's store);
 * neither: the system's store, where a private CA is not.
 */
static const char *mdm_trust(void)
{
	const char *tls = sim_state_get("tls_ca");
	int anchors = sim_state_geti("anchors", 0) > 0;

	if (tls != NULL && *tls == '\0')
		tls = NULL;
	if (anchors && tls != NULL) {
		struct sim_buf a = sim_file_read(sim_path("anchors.pem")), b = sim_file_read(tls);
		sim_buf_append(&a, b.p, b.len);
		sim_file_write(sim_path("mdm-trust.pem"), a.p, a.len);
		sim_buf_free(&a);
		sim_buf_free(&b);
		return sim_path("mdm-trust.pem");
	}
	return anchors ? sim_path("anchors.pem") : tls;
}

/* The SCEP payload (Configuration Profile Reference, com.apple.security.scep). */
static void profile_scep(xmlNodePtr scep)
{
	xmlNodePtr sc = sim_plist_get(scep, "PayloadContent");

	sim_state_set("identity_kind", "scep");
	set_from("scep_url", sc, "URL", "SCEP");
	{
		char *name = sim_plist_string(sim_plist_get(sc, "Name"));
		char *ch = sim_plist_string(sim_plist_get(sc, "Challenge"));
		sim_state_set("scep_name", name ? name : "");
		sim_state_set("challenge", ch ? ch : "");
		free(name);
		free(ch);
	}
	/* Apple's defaults: 1024 bits (refused by a careful CA), Key Usage unset. */
	sim_state_seti("keysize", sim_plist_int(sim_plist_get(sc, "Keysize"), 1024));
	sim_state_seti("key_usage", sim_plist_int(sim_plist_get(sc, "Key Usage"), 0));
	{
		struct sim_buf fp = sim_plist_data(sim_plist_get(sc, "CAFingerprint"));
		char hex[2 * 32 + 1] = "";

		if (fp.len > 32)
			sim_fail("profile: CAFingerprint of %zu bytes", fp.len);
		sim_hex(fp.p, fp.len, 0, hex);
		sim_state_set("ca_fingerprint", hex);
		sim_buf_free(&fp);
	}
}

/*
 * The ACME payload (com.apple.security.acme.yaml), as a device with a
 * Secure Enclave reads it: an attested hardware-bound key needs
 * HardwareBound, KeyType ECSECPrimeRandom and KeySize 256 or 384.
 */
static void profile_acme(xmlNodePtr acme)
{
	xmlNodePtr c = acme; /* its keys beside PayloadType, no PayloadContent */
	char *type = need_string(c, "KeyType", "ACME");
	long size = sim_plist_int(sim_plist_get(c, "KeySize"), 0);

	sim_state_set("identity_kind", "acme");
	set_from("acme_url", c, "DirectoryURL", "ACME");
	set_from("client_identifier", c, "ClientIdentifier", "ACME");
	if (strncmp(sim_state_get("acme_url"), "https://", 8) != 0)
		sim_fail("profile: DirectoryURL must be https (com.apple.security.acme)");
	if (!sim_plist_bool(sim_plist_get(c, "HardwareBound"), 0) ||
	        strcmp(type, "ECSECPrimeRandom") != 0 || (size != 256 && size != 384))
		sim_fail("profile: this device makes attested keys only: HardwareBound with "
		         "ECSECPrimeRandom 256 or 384 (com.apple.security.acme)");
	if (!sim_plist_bool(sim_plist_get(c, "Attest"), 0))
		sim_fail("profile: Attest is false: the server would get no attestation");
	sim_state_seti("keysize", size);
	free(type);
}

static void step_profile(void)
{
	struct sim_http h = {0};
	struct sim_buf plist;
	xmlDocPtr doc;
	xmlNodePtr top, scep, mdm;
	char *scep_uuid, *ident;

	if (opt.trust == NULL || (opt.enroll_url == NULL && opt.profile_file == NULL))
		sim_fail("profile needs --trust, and --enroll-url or --profile-file");
	if (opt.profile_file != NULL) {
		/* Handed over as a file (AirDrop, mail, Apple Configurator). */
		h.resp = sim_file_read(opt.profile_file);
	} else {
		h.method = "GET";
		h.url = opt.enroll_url;
		/*
		 * Without --tls-ca the profile is fetched as Safari does after its
		 * user accepted the warning: its CMS signature (--trust) is what
		 * vouches for it; the MDM URLs are then trusted only through what
		 * it installs (mdm_trust).
		 */
		h.ca_file = sim_state_get("tls_ca");
		h.insecure = h.ca_file == NULL || *h.ca_file == '\0';
		if (h.insecure)
			h.ca_file = NULL;
		sim_http_do(&h);
		sim_log_exchange(
		        "profile", opt.enroll_url, strlen(opt.enroll_url), h.resp.p, h.resp.len);
		if (h.status != 200)
			sim_fail("GET %s: HTTP %ld: %.200s", opt.enroll_url, h.status,
			        (char *)h.resp.p);
		if (strncasecmp(h.resp_type, "application/x-apple-aspen-config", 32) != 0)
			sim_fail("profile: Content-Type \"%s\", want "
			         "application/x-apple-aspen-config",
			        h.resp_type);
	}
	sim_file_write(sim_path("profile.der"), h.resp.p, h.resp.len);
	plist = profile_verify(&h.resp);
	sim_file_write(sim_path("profile.plist"), plist.p, plist.len);
	doc = sim_plist_parse(plist.p, plist.len, "profile");
	top = sim_plist_root(doc);
	if ((mdm = payload_of_type(top, "com.apple.mdm")) == NULL)
		sim_fail("profile: no com.apple.mdm payload");
	if ((scep = payload_of_type(top, "com.apple.security.acme")) != NULL) {
		profile_acme(scep);
		scep_uuid = need_string(scep, "PayloadUUID", "ACME");
	} else if ((scep = payload_of_type(top, "com.apple.security.scep")) != NULL) {
		profile_scep(scep);
		scep_uuid = need_string(scep, "PayloadUUID", "SCEP");
	} else {
		sim_fail("profile: no identity payload (com.apple.security.scep or .acme)");
	}
	sim_state_set("scep_uuid", scep_uuid);
	profile_anchors(top);
	/* The MDM payload. */
	profile_pins(top, mdm, "ServerURLPinningCertificateUUIDs", "server");
	profile_pins(top, mdm, "CheckInURLPinningCertificateUUIDs", "checkin");
	set_from("server_url", mdm, "ServerURL", "MDM");
	set_from("topic", mdm, "Topic", "MDM");
	{
		char *ci = sim_plist_string(sim_plist_get(mdm, "CheckInURL"));
		char *srv = sim_plist_string(sim_plist_get(mdm, "ServerURL"));
		/* CheckInURL absent: check-ins go to the ServerURL (Apple). */
		sim_state_set("checkin_url", ci && *ci ? ci : srv);
		free(ci);
		free(srv);
	}
	ident = need_string(mdm, "IdentityCertificateUUID", "MDM");
	if (strcmp(ident, scep_uuid) != 0)
		sim_fail("profile: IdentityCertificateUUID %s is not the identity payload's "
		         "PayloadUUID %s",
		        ident, scep_uuid);
	sim_state_seti("sign_message", sim_plist_bool(sim_plist_get(mdm, "SignMessage"), 0));
	sim_state_seti("checkout_when_removed",
	        sim_plist_bool(sim_plist_get(mdm, "CheckOutWhenRemoved"), 0));
	if (sim_plist_int(sim_plist_get(mdm, "AccessRights"), 0) <= 0)
		sim_fail("profile: the MDM payload has no AccessRights");
	sim_say("profile: verified; %s %s, MDM %s, SignMessage %s, %ld trust anchor "
	        "payload(s)%s%s",
	        strcmp(sim_state_get("identity_kind"), "acme") == 0 ? "ACME" : "SCEP",
	        strcmp(sim_state_get("identity_kind"), "acme") == 0 ? sim_state_get("acme_url")
	                                                            : sim_state_get("scep_url"),
	        sim_state_get("server_url"), sim_state_geti("sign_message", 0) ? "true" : "false",
	        sim_state_geti("anchors", 0),
	        *sim_state_get("pins_server") ? ", ServerURL pinned" : "",
	        *sim_state_get("pins_checkin") ? ", CheckInURL pinned" : "");
	free(scep_uuid);
	free(ident);
	xmlFreeDoc(doc);
	sim_buf_free(&plist);
	sim_http_free(&h);
}

/*
 * The SCEP payload's Subject, [[["O","MDM"]],[["CN","..."]]], as an
 * X509_NAME; absent, Apple's CN=com.apple.security.scep.<PayloadUUID>.
 */
static X509_NAME *profile_subject(void)
{
	struct sim_buf plist = sim_file_read(sim_path("profile.plist"));
	xmlDocPtr doc = sim_plist_parse(plist.p, plist.len, "profile.plist");
	int acme = strcmp(sim_state_need("identity_kind"), "acme") == 0;
	xmlNodePtr scep = payload_of_type(
	        sim_plist_root(doc), acme ? "com.apple.security.acme" : "com.apple.security.scep");
	/* SCEP's Subject is in its PayloadContent, ACME's in the payload itself. */
	xmlNodePtr subj =
	        sim_plist_get(acme ? scep : sim_plist_get(scep, "PayloadContent"), "Subject");
	X509_NAME *n = X509_NAME_new();
	char cn[128];

	if (sim_plist_is(subj, "array")) {
		for (xmlNodePtr rdn = subj->children; rdn != NULL; rdn = rdn->next) {
			int set = 0;
			if (rdn->type != XML_ELEMENT_NODE)
				continue;
			for (xmlNodePtr pair = rdn->children; pair != NULL; pair = pair->next) {
				xmlNodePtr t, v;
				char *ts, *vs;
				if (pair->type != XML_ELEMENT_NODE)
					continue;
				for (t = pair->children; t && t->type != XML_ELEMENT_NODE;)
					t = t->next;
				for (v = t ? t->next : NULL; v && v->type != XML_ELEMENT_NODE;)
					v = v->next;
				ts = sim_plist_string(t);
				vs = sim_plist_string(v);
				if (ts == NULL || vs == NULL)
					sim_fail("profile: Subject is not [[[type, value]]] "
					         "strings");
				if (!X509_NAME_add_entry_by_txt(
				            n, ts, MBSTRING_UTF8, (unsigned char *)vs, -1, -1, set))
					sim_ossl_fail("X509_NAME_add_entry_by_txt (Subject)");
				set = -1; /* more pairs in this RDN: a multi-valued one */
				free(ts);
				free(vs);
			}
		}
	}
	if (X509_NAME_entry_count(n) == 0) {
		snprintf(cn, sizeof(cn), "com.apple.security.scep.%s", sim_state_need("scep_uuid"));
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (unsigned char *)cn, -1, -1, 0);
	}
	xmlFreeDoc(doc);
	sim_buf_free(&plist);
	return n;
}

/* ---------------------------------------------------------------- SCEP */

static void fingerprint(X509 *x, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (!X509_digest(x, EVP_sha256(), md, &n))
		sim_ossl_fail("X509_digest");
	sim_hex(md, n, 0, out);
}

static void scep_opts(struct sim_scep_opts *o)
{
	const char *ch = opt.challenge ? opt.challenge : sim_state_need("challenge");

	memset(o, 0, sizeof(*o));
	o->url = sim_state_need("scep_url");
	o->ca_ident = sim_state_get("scep_name");
	o->challenge = *ch ? ch : NULL;
	o->keysize = (int)sim_state_geti("keysize", 1024);
	o->key_usage = (int)sim_state_geti("key_usage", 0);
	o->force_get = opt.scep_get || sim_state_geti("scep_get", 0);
	o->mac = is_mac();
	o->url_escape = !o->mac;
	o->digest = opt.digest;
	o->tamper_csr = opt.tamper_csr;
	o->transaction_id = opt.txid;
	o->expect_failure = opt.expect_failure;
	{
		const char *fp = sim_state_get("ca_fingerprint");
		size_t n = fp != NULL ? strlen(fp) / 2 : 0;

		if (n > sizeof(o->ca_fingerprint))
			sim_fail("profile: CAFingerprint of %zu bytes: a device takes 16 (MD5) or "
			         "20 "
			         "(SHA-1) only",
			        n);
		for (size_t i = 0; i < n; i++) {
			unsigned v;
			if (sscanf(fp + 2 * i, "%2x", &v) != 1)
				sim_fail("state: ca_fingerprint is not hex");
			o->ca_fingerprint[i] = (uint8_t)v;
		}
		o->ca_fingerprint_len = n;
	}
}

/*
 * The device's new identity: identity.pem/.key and identity_sha256; the
 * one it replaces (old, NULL: none) kept as identity-N.pem/.key, its
 * fingerprint as previous_identity_sha256.
 */
static void identity_replace(X509 *cert, EVP_PKEY *key, X509 *old, EVP_PKEY *oldkey)
{
	char name[64], fp[65];

	if (old != NULL) {
		long gen = sim_state_geti("identity_generation", 0) + 1;

		snprintf(name, sizeof(name), "identity-%ld.pem", gen);
		sim_save_cert(sim_path(name), old);
		snprintf(name, sizeof(name), "identity-%ld.key", gen);
		sim_save_key(sim_path(name), oldkey);
		sim_state_seti("identity_generation", gen);
		fingerprint(old, fp);
		sim_state_set("previous_identity_sha256", fp);
	}
	sim_save_cert(sim_path("identity.pem"), cert);
	sim_save_key(sim_path("identity.key"), key);
	fingerprint(cert, fp);
	sim_state_set("identity_sha256", fp);
}

static void step_scep(void)
{
	struct sim_scep_opts o;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;

	scep_opts(&o);
	o.subject = profile_subject();
	if (sim_scep_enroll(&o, &cert, &key) == 1) {
		X509_NAME_free(o.subject);
		return; /* the expected refusal; the device keeps what it had */
	}
	identity_replace(cert, key, NULL, NULL);
	X509_NAME_free(o.subject);
	X509_free(cert);
	EVP_PKEY_free(key);
}

/*
 * The ACME payload's identity (tests/sim/acme.c): certified after
 * device-attest-01.  --attest-standin PROGRAM and --attest-dir DIR (or
 * MDM_ATTEST_STANDIN, MDM_ATTEST_DIR) are the stand-in for Apple's
 * attestation service.  Negative cases: --acme-expect STEP:TYPE (STEP
 * order, challenge or finalize; TYPE the ACME error type's last part,
 * e.g. rejectedIdentifier), --attest-token T (attest another token),
 * --csr-other-key (finalize with a key that is not the attested one).
 */
static void step_acme(void)
{
	struct sim_acme_opts o = {0};
	char want[160] = "";
	const char *ch = opt.challenge ? opt.challenge : sim_state_need("client_identifier");
	X509 *cert = NULL, *old = NULL;
	EVP_PKEY *key = NULL, *oldkey = NULL;
	char *trust;

	if (strcmp(sim_state_need("identity_kind"), "acme") != 0)
		sim_fail("acme: the profile's identity payload is not com.apple.security.acme");
	o.directory_url = sim_state_need("acme_url");
	o.client_identifier = ch;
	o.subject = profile_subject();
	o.curve = sim_state_geti("keysize", 384) == 256 ? "P-256" : "P-384";
	/* sim_path's ring is reused by every logged exchange: a copy. */
	trust = sim_xstrdup(mdm_trust());
	o.ca_file = trust;
	o.attest_cmd = sim_state_get("attest_standin");
	o.attest_dir = sim_state_get("attest_dir");
	if (o.attest_cmd == NULL || o.attest_dir == NULL)
		sim_fail("acme needs --attest-standin and --attest-dir (Apple's attestation "
		         "service)");
	o.serial = sim_state_need("serial");
	o.udid = sim_state_need("udid");
	o.attest_token = opt.attest_token;
	o.csr_other_key = opt.csr_other_key;
	if (opt.acme_expect != NULL) {
		const char *colon = strchr(opt.acme_expect, ':');
		if (colon == NULL)
			sim_fail("--acme-expect is STEP:TYPE");
		snprintf(want, sizeof(want), "urn:ietf:params:acme:error:%s", colon + 1);
		if (strncmp(opt.acme_expect, "order:", 6) == 0)
			o.expect_error_at_order = want;
		else if (strncmp(opt.acme_expect, "challenge:", 10) == 0)
			o.expect_error_at_challenge = want;
		else if (strncmp(opt.acme_expect, "finalize:", 9) == 0)
			o.expect_error_at_finalize = want;
		else
			sim_fail("--acme-expect STEP is order, challenge or finalize");
	}
	if (sim_acme_enroll(&o, &cert, &key) == 1) {
		X509_NAME_free(o.subject);
		free(trust);
		return; /* the expected refusal; the device keeps what it had */
	}
	if (opt.acme_expect != NULL)
		sim_fail("acme: certified, but %s was expected", opt.acme_expect);
	/* A second ACME identity (a new payload) replaces the first: it is kept. */
	if (sim_file_exists(sim_path("identity.pem"))) {
		old = sim_load_cert(sim_path("identity.pem"));
		oldkey = sim_load_key(sim_path("identity.key"));
	}
	identity_replace(cert, key, old, oldkey);
	X509_free(old);
	EVP_PKEY_free(oldkey);
	X509_NAME_free(o.subject);
	X509_free(cert);
	EVP_PKEY_free(key);
	free(trust);
}

static void step_renew(void)
{
	struct sim_scep_opts o;
	X509 *cert = NULL, *old = sim_load_cert(sim_path("identity.pem"));
	EVP_PKEY *key = NULL, *oldkey = sim_load_key(sim_path("identity.key"));

	scep_opts(&o);
	o.challenge = NULL; /* a renewal is authorised by its signer */
	o.renew_cert = old;
	o.renew_key = oldkey;
	if (sim_scep_enroll(&o, &cert, &key) == 1) {
		X509_free(old);
		EVP_PKEY_free(oldkey);
		return; /* the expected refusal: the identity stays */
	}
	identity_replace(cert, key, old, oldkey);
	X509_free(old);
	X509_free(cert);
	EVP_PKEY_free(oldkey);
	EVP_PKEY_free(key);
}

/* ---------------------------------------------------------------- MDM requests */

/*
 * PUT body to url as the device authenticates: the identity as TLS
 * client certificate and/or the Mdm-Signature header.  The answer in *h.
 */
static void mdm_put(const char *url, const char *ctype, const char *what,
        const struct sim_buf *body, struct sim_http *h)
{
	const char *auth = sim_state_need("auth");
	int tls = strcmp(auth, "signature") != 0;
	int sig = strcmp(auth, "signature") == 0 || strcmp(auth, "both") == 0 ||
	        (strcmp(auth, "profile") == 0 && sim_state_geti("sign_message", 0));
	char *hdr = NULL;

	memset(h, 0, sizeof(*h));
	h->method = "PUT";
	h->url = url;
	h->ca_file = mdm_trust();
	h->pin_file =
	        sim_state_get(strcmp(ctype, CHECKIN_CTYPE) == 0 ? "pins_checkin" : "pins_server");
	if (h->pin_file != NULL && *h->pin_file == '\0')
		h->pin_file = NULL;
	h->content_type = ctype;
	h->body = body->p;
	h->body_len = body->len;
	if (tls) {
		h->client_cert = sim_path("identity.pem");
		h->client_key = sim_path("identity.key");
	}
	if (sig) {
		X509 *c = sim_load_cert(sim_path("identity.pem"));
		EVP_PKEY *k = sim_load_key(sim_path("identity.key"));
		char *b64 =
		        sim_mdm_signature(c, k, sim_state_need("sig_digest"), body->p, body->len);
		size_t n = strlen(b64) + 32;

		hdr = sim_xmalloc(n);
		snprintf(hdr, n, "Mdm-Signature: %s", b64);
		h->headers[0] = hdr;
		free(b64);
		X509_free(c);
		EVP_PKEY_free(k);
	}
	sim_http_do(h);
	sim_log_exchange(what, body->p, body->len, h->resp.p, h->resp.len);
	free(hdr);
}

static void checkin(const char *what, struct sim_pw *w)
{
	struct sim_http h;

	sim_pw_end(w);
	mdm_put(sim_state_need("checkin_url"), CHECKIN_CTYPE, what, &w->out, &h);
	if (h.status != 200)
		sim_fail("%s: HTTP %ld: %.200s", what, h.status, (char *)h.resp.p);
	sim_say("%s: 200", what);
	sim_buf_free(&w->out);
	sim_http_free(&h);
}

/* Persistent random device values (a token survives until the device changes it). */
static const char *device_value(const char *key, int bytes)
{
	uint8_t b[2048];
	char uuid[37], *b64;

	if (sim_state_get(key) != NULL)
		return sim_state_get(key);
	if (bytes == 0) {
		sim_uuid(uuid);
		sim_state_set(key, uuid);
	} else {
		sim_random(b, (size_t)bytes);
		b64 = sim_b64(b, (size_t)bytes);
		sim_state_set(key, b64);
		free(b64);
	}
	return sim_state_get(key);
}

static void put_data(struct sim_pw *w, const char *key, const char *b64)
{
	struct sim_buf b = sim_unb64(b64);

	sim_pw_key_data(w, key, b.p, b.len);
	sim_buf_free(&b);
}

/*
 * Authenticate.  iPhone: commandment Authenticate/iOS-11.3.1-cell.xml
 * with the keys iOS 13+ adds (DeviceName, Model, ModelName); Mac: nanomdm
 * Authenticate.2.plist (macOS 10.12.6), Challenge included as captured.
 * Keys sorted, as CFPropertyList writes them.
 */
static void step_authenticate(void)
{
	struct sim_pw w;
	static const uint8_t mac_challenge[] = {'a', 'p', 'p', 'l', 'e'};

	sim_pw_begin(&w);
	if (is_mac()) {
		sim_pw_key_string(&w, "BuildVersion", "23F79");
		sim_pw_key_data(&w, "Challenge", mac_challenge, sizeof(mac_challenge));
		sim_pw_key_string(&w, "DeviceName", "applesim Mac");
		sim_pw_key_string(&w, "MessageType", "Authenticate");
		sim_pw_key_string(&w, "Model", "Mac14,2");
		sim_pw_key_string(&w, "ModelName", "MacBook Air");
		sim_pw_key_string(&w, "OSVersion", "14.5");
		sim_pw_key_string(&w, "ProductName", "Mac14,2");
	} else {
		sim_pw_key_string(&w, "BuildVersion", "21F90");
		sim_pw_key_string(&w, "DeviceName", "applesim iPhone");
		sim_pw_key_string(&w, "IMEI", "35 399010 562718 5");
		sim_pw_key_string(&w, "MEID", "35399010562718");
		sim_pw_key_string(&w, "MessageType", "Authenticate");
		sim_pw_key_string(&w, "Model", "MQ9T3");
		sim_pw_key_string(&w, "ModelName", "iPhone");
		sim_pw_key_string(&w, "OSVersion", "17.5.1");
		sim_pw_key_string(&w, "ProductName", "iPhone15,2");
	}
	sim_pw_key_string(&w, "SerialNumber", sim_state_need("serial"));
	sim_pw_key_string(&w, "Topic", sim_state_need("topic"));
	sim_pw_key_string(&w, "UDID", sim_state_need("udid"));
	checkin("Authenticate", &w);
}

/*
 * TokenUpdate.  iPhone: nanomdm TokenUpdate.1.plist (Token and a long
 * UnlockToken as <data>, AwaitingConfiguration); Mac: commandment
 * TokenUpdate/10.12.2.xml (no UnlockToken).
 */
static void step_tokenupdate(void)
{
	struct sim_pw w;

	sim_pw_begin(&w);
	sim_pw_key_bool(&w, "AwaitingConfiguration", 0);
	sim_pw_key_string(&w, "MessageType", "TokenUpdate");
	sim_pw_key_string(&w, "PushMagic", device_value("push_magic", 0));
	put_data(&w, "Token", device_value("push_token", 32));
	sim_pw_key_string(&w, "Topic", sim_state_need("topic"));
	sim_pw_key_string(&w, "UDID", sim_state_need("udid"));
	if (!is_mac())
		put_data(&w, "UnlockToken", device_value("unlock_token", 1484));
	checkin("TokenUpdate", &w);
}

static void need_mac(const char *step)
{
	if (!is_mac())
		sim_fail("%s: the user channel is a Mac's (--device mac)", step);
}

/* UserAuthenticate step one (Apple MDM protocol): the server answers a DigestChallenge. */
static void step_user_authenticate(void)
{
	struct sim_pw w;
	struct sim_http h;
	xmlDocPtr doc;
	xmlNodePtr dc;

	need_mac("user-authenticate");
	sim_pw_begin(&w);
	sim_pw_key_string(&w, "MessageType", "UserAuthenticate");
	sim_pw_key_string(&w, "UDID", sim_state_need("udid"));
	sim_pw_key_string(&w, "UserID", device_value("user_id", 0));
	sim_pw_key_string(&w, "UserLongName", "Apple Simulator");
	sim_pw_key_string(&w, "UserShortName", "applesim");
	sim_pw_end(&w);
	mdm_put(sim_state_need("checkin_url"), CHECKIN_CTYPE, "UserAuthenticate", &w.out, &h);
	if (h.status != 200)
		sim_fail("UserAuthenticate: HTTP %ld: %.200s", h.status, (char *)h.resp.p);
	doc = sim_plist_parse(h.resp.p, h.resp.len, "UserAuthenticate answer");
	dc = sim_plist_get(sim_plist_root(doc), "DigestChallenge");
	if (!sim_plist_is(dc, "string"))
		sim_fail("UserAuthenticate: the answer has no DigestChallenge string");
	sim_say("UserAuthenticate: 200, DigestChallenge given");
	xmlFreeDoc(doc);
	sim_buf_free(&w.out);
	sim_http_free(&h);
}

/* The console user's TokenUpdate: commandment TokenUpdate/10.11.x-user.plist. */
static void step_user_tokenupdate(void)
{
	struct sim_pw w;

	need_mac("user-tokenupdate");
	sim_pw_begin(&w);
	sim_pw_key_string(&w, "MessageType", "TokenUpdate");
	sim_pw_key_bool(&w, "NotOnConsole", 0);
	sim_pw_key_string(&w, "PushMagic", device_value("user_push_magic", 0));
	put_data(&w, "Token", device_value("user_push_token", 32));
	sim_pw_key_string(&w, "Topic", sim_state_need("topic"));
	sim_pw_key_string(&w, "UDID", sim_state_need("udid"));
	sim_pw_key_string(&w, "UserID", device_value("user_id", 0));
	sim_pw_key_string(&w, "UserLongName", "Apple Simulator");
	sim_pw_key_string(&w, "UserShortName", "applesim");
	checkin("TokenUpdate (user)", &w);
}

/* CheckOut: commandment CheckOut/iOS-11.3.1.xml and 10.11.x.xml. */
static void step_checkout(void)
{
	struct sim_pw w;

	if (!sim_state_geti("checkout_when_removed", 0))
		sim_say("checkout: the profile has CheckOutWhenRemoved false; sent anyway");
	sim_pw_begin(&w);
	sim_pw_key_string(&w, "MessageType", "CheckOut");
	sim_pw_key_string(&w, "Topic", sim_state_need("topic"));
	sim_pw_key_string(&w, "UDID", sim_state_need("udid"));
	checkin("CheckOut", &w);
}

/* ---------------------------------------------------------------- commands */

/*
 * The answers: the real captured plist of each RequestType when the
 * vectors are there (iPhone: iOS captures, Mac: macOS ones), else our
 * own template of the same shape (@CMD@, @UDID@ and @STATUS@ filled in).
 */
struct answer {
	const char *type, *status;
	const char *vec_iphone, *vec_mac;
	const char *tmpl;
};

#define PLIST_HEAD                                                                                 \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD "      \
	"PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist "             \
	"version=\"1.0\">\n<dict>\n"
#define PLIST_TAIL                                                                                 \
	"\t<key>Status</key>\n\t<string>@STATUS@</string>\n\t<key>UDID</key>\n\t<string>@UDID@</"  \
	"string>\n</dict>\n</plist>\n"
#define UUID_KEY "\t<key>CommandUUID</key>\n\t<string>@CMD@</string>\n"
#define TD       "commandment/testdata/"

static const struct answer answers[] = {
        {"DeviceInformation", "Acknowledged", TD "DeviceInformation/iOS-11.3.1.xml",
                TD "DeviceInformation/macOS-10.13.1.xml",
                PLIST_HEAD UUID_KEY
                "\t<key>QueryResponses</key>\n\t<dict>\n"
                "\t\t<key>AvailableDeviceCapacity</key>\n\t\t<real>15.468269348144531</real>\n"
                "\t\t<key>BuildVersion</key>\n\t\t<string>21F90</string>\n"
                "\t\t<key>DeviceCapacity</key>\n\t\t<real>119.20928955078125</real>\n"
                "\t\t<key>DeviceName</key>\n\t\t<string>applesim</string>\n"
                "\t\t<key>IsRoaming</key>\n\t\t<false/>\n"
                "\t\t<key>ModelName</key>\n\t\t<string>iPhone</string>\n"
                "\t\t<key>OSVersion</key>\n\t\t<string>17.5.1</string>\n"
                "\t\t<key>ProductName</key>\n\t\t<string>iPhone15,2</string>\n"
                "\t\t<key>SerialNumber</key>\n\t\t<string>C00000000004</string>\n"
                "\t\t<key>UDID</key>\n\t\t<string>@UDID@</string>\n"
                "\t\t<key>WiFiMAC</key>\n\t\t<string>00:00:00:00:00:00</string>\n"
                "\t</dict>\n" PLIST_TAIL},
        {"SecurityInfo", "Acknowledged", TD "SecurityInfo/iOS-11.3.1.xml",
                TD "SecurityInfo/macOS-10.13.1.xml",
                PLIST_HEAD UUID_KEY
                "\t<key>SecurityInfo</key>\n\t<dict>\n"
                "\t\t<key>HardwareEncryptionCaps</key>\n\t\t<integer>3</integer>\n"
                "\t\t<key>PasscodeCompliant</key>\n\t\t<true/>\n"
                "\t\t<key>PasscodeCompliantWithProfiles</key>\n\t\t<true/>\n"
                "\t\t<key>PasscodePresent</key>\n\t\t<false/>\n"
                "\t</dict>\n" PLIST_TAIL},
        {"ProfileList", "Acknowledged", TD "ProfileList/iOS-11.3.1.xml",
                TD "ProfileList/10.11.x.xml",
                PLIST_HEAD UUID_KEY
                "\t<key>ProfileList</key>\n\t<array>\n\t\t<dict>\n"
                "\t\t\t<key>HasRemovalPasscode</key>\n\t\t\t<false/>\n"
                "\t\t\t<key>IsEncrypted</key>\n\t\t\t<false/>\n"
                "\t\t\t<key>IsManaged</key>\n\t\t\t<false/>\n"
                "\t\t\t<key>PayloadContent</key>\n\t\t\t<array>\n\t\t\t\t<dict>\n"
                "\t\t\t\t\t<key>PayloadIdentifier</key>\n"
                "\t\t\t\t\t<string>com.example.mdm.enroll.mdm</string>\n"
                "\t\t\t\t\t<key>PayloadType</key>\n\t\t\t\t\t<string>com.apple.mdm</string>\n"
                "\t\t\t\t\t<key>PayloadVersion</key>\n\t\t\t\t\t<integer>1</integer>\n"
                "\t\t\t\t</dict>\n\t\t\t</array>\n"
                "\t\t\t<key>PayloadDisplayName</key>\n\t\t\t<string>MDM</string>\n"
                "\t\t\t<key>PayloadIdentifier</key>\n"
                "\t\t\t<string>com.example.mdm.enroll</string>\n"
                "\t\t\t<key>PayloadRemovalDisallowed</key>\n\t\t\t<false/>\n"
                "\t\t\t<key>PayloadUUID</key>\n"
                "\t\t\t<string>8A7E5D5C-3D2B-4F6A-9C1E-0B7D6A5F4E3D</string>\n"
                "\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n"
                "\t\t</dict>\n\t</array>\n" PLIST_TAIL},
        /* No valid iOS capture: commandment's and micromdm's are redacted to invalid base64. */
        {"CertificateList", "Acknowledged", "zentral/tests/mdm/testdata/certificate_list.plist",
                TD "CertificateList/10.11.x.xml",
                PLIST_HEAD "\t<key>CertificateList</key>\n\t<array>\n\t\t<dict>\n"
                           "\t\t\t<key>CommonName</key>\n\t\t\t<string>MDM Device "
                           "Identity</string>\n"
                           "\t\t\t<key>Data</key>\n\t\t\t<data>\n\t\t\tAAAA\n\t\t\t</data>\n"
                           "\t\t\t<key>IsIdentity</key>\n\t\t\t<true/>\n"
                           "\t\t</dict>\n\t</array>\n" UUID_KEY PLIST_TAIL},
        {"InstalledApplicationList", "Acknowledged", TD "InstalledApplicationList/iOS-12.1.xml",
                TD "InstalledApplicationList/10.11.x.xml",
                PLIST_HEAD UUID_KEY
                "\t<key>InstalledApplicationList</key>\n\t<array>\n\t\t<dict>\n"
                "\t\t\t<key>BundleSize</key>\n\t\t\t<integer>87191552</integer>\n"
                "\t\t\t<key>DynamicSize</key>\n\t\t\t<integer>196608</integer>\n"
                "\t\t\t<key>Identifier</key>\n\t\t\t<string>com.apple.Pages</string>\n"
                "\t\t\t<key>Installing</key>\n\t\t\t<false/>\n"
                "\t\t\t<key>Name</key>\n\t\t\t<string>Pages</string>\n"
                "\t\t\t<key>ShortVersion</key>\n\t\t\t<string>13.1</string>\n"
                "\t\t\t<key>Version</key>\n\t\t\t<string>7037.0.73</string>\n"
                "\t\t</dict>\n\t</array>\n" PLIST_TAIL},
        /* The two that are not Acknowledged. */
        {"", "NotNow", TD "NotNow/iOS-11.3.1.xml", TD "NotNow/iOS-11.3.1.xml",
                PLIST_HEAD UUID_KEY PLIST_TAIL},
        {"", "Error", TD "Errors/iOS-11.3.1-RemoveProfile-Unmanaged.xml",
                TD "Errors/10.13.6-invalid-command.xml",
                PLIST_HEAD UUID_KEY
                "\t<key>ErrorChain</key>\n\t<array>\n\t\t<dict>\n"
                "\t\t\t<key>ErrorCode</key>\n\t\t\t<integer>12013</integer>\n"
                "\t\t\t<key>ErrorDomain</key>\n\t\t\t<string>MCMDMErrorDomain</string>\n"
                "\t\t\t<key>LocalizedDescription</key>\n\t\t\t<string>The profile is not "
                "managed by MDM.</string>\n"
                "\t\t\t<key>USEnglishDescription</key>\n\t\t\t<string>The profile is not "
                "managed by MDM.</string>\n"
                "\t\t</dict>\n\t</array>\n" PLIST_TAIL},
        /* Anything else: a bare acknowledgement (DeviceLock, RestartDevice...). */
        {"", "Acknowledged", NULL, NULL, PLIST_HEAD UUID_KEY PLIST_TAIL},
};
#define NANSWERS ((int)(sizeof(answers) / sizeof(answers[0])))

static const struct answer *answer_for(const char *type, const char *status)
{
	for (int i = 0; i < NANSWERS; i++)
		if ((answers[i].type[0] == '\0' || strcmp(answers[i].type, type) == 0) &&
		        strcmp(answers[i].status, status) == 0)
			return &answers[i];
	sim_fail("no answer for %s %s", type, status);
}

static struct sim_buf report(const char *status, const char *uuid, const char *type)
{
	const struct answer *a = answer_for(type, status);
	const char *vec = is_mac() ? a->vec_mac : a->vec_iphone;
	const char *root = opt.vectors;
	struct sim_buf b = {NULL, 0};
	char path[2048];

	if (vec != NULL && root != NULL && *root != '\0') {
		snprintf(path, sizeof(path), "%s/%s", root, vec);
		if (sim_file_exists(path)) {
			/* The real answer, its CommandUUID and UDID ours. */
			struct sim_buf raw = sim_file_read(path);
			xmlDocPtr doc = sim_plist_parse(raw.p, raw.len, path);
			xmlNodePtr top = sim_plist_root(doc);

			xmlNodePtr qr = sim_plist_get(top, "QueryResponses");

			sim_plist_set_string(top, "CommandUUID", uuid);
			sim_plist_set_string(top, "UDID", sim_state_need("udid"));
			/* DeviceInformation names the device inside too. */
			if (sim_plist_is(sim_plist_get(qr, "UDID"), "string"))
				sim_plist_set_string(qr, "UDID", sim_state_need("udid"));
			b = sim_plist_dump(doc);
			xmlFreeDoc(doc);
			sim_buf_free(&raw);
			return b;
		}
	}
	for (const char *t = a->tmpl; *t != '\0';) {
		static const char *const names[] = {"@CMD@", "@UDID@", "@STATUS@"};
		const char *values[] = {uuid, sim_state_need("udid"), status};
		int k;

		for (k = 0; k < 3; k++)
			if (strncmp(t, names[k], strlen(names[k])) == 0)
				break;
		if (k < 3) {
			sim_buf_append(&b, values[k], strlen(values[k]));
			t += strlen(names[k]);
		} else {
			sim_buf_append(&b, t++, 1);
		}
	}
	return b;
}

static struct sim_buf idle(void)
{
	struct sim_pw w;

	/* nanomdm mdmSignatureBody2.plist, the Idle a real Mac signed. */
	sim_pw_begin(&w);
	sim_pw_key_string(&w, "Status", "Idle");
	sim_pw_key_string(&w, "UDID", sim_state_need("udid"));
	sim_pw_end(&w);
	return w.out;
}

static void step_commands(void)
{
	struct sim_buf body = idle();
	int notnow_done = 0, error_done = 0, n = 0;
	FILE *log = fopen(sim_path("commands.log"), "a"), *acks = fopen(sim_path("acks.log"), "a");
	char *answered = NULL; /* the command whose report the next answer is for */

	if (log == NULL || acks == NULL)
		sim_fail("cannot write %s or acks.log", sim_path("commands.log"));
	for (;;) {
		struct sim_http h;
		xmlDocPtr doc;
		xmlNodePtr top, cmd;
		char *uuid, *type;
		const char *status = "Acknowledged";

		mdm_put(sim_state_need("server_url"), SERVER_CTYPE, "command", &body, &h);
		sim_buf_free(&body);
		if (answered != NULL) {
			/* What the server said to that report: 200 means it has it. */
			fprintf(acks, "%s answered %ld\n", answered, h.status);
			fflush(acks);
			free(answered);
			answered = NULL;
		}
		if (h.status != 200)
			sim_fail("command channel: HTTP %ld: %.200s", h.status, (char *)h.resp.p);
		if (h.resp.len == 0) {
			sim_say("commands: %d answered; the server has nothing more (empty 200)",
			        n);
			sim_http_free(&h);
			break;
		}
		if (++n > MAX_ROUNDS)
			sim_fail("commands: more than %d in a row", MAX_ROUNDS);
		doc = sim_plist_parse(h.resp.p, h.resp.len, "command");
		top = sim_plist_root(doc);
		cmd = sim_plist_get(top, "Command");
		uuid = sim_plist_string(sim_plist_get(top, "CommandUUID"));
		type = sim_plist_string(sim_plist_get(cmd, "RequestType"));
		if (uuid == NULL || type == NULL)
			sim_fail("command without CommandUUID or Command/RequestType: %.300s",
			        (char *)h.resp.p);
		if (opt.notnow && !notnow_done && strcmp(type, opt.notnow) == 0) {
			status = "NotNow";
			notnow_done = 1;
		} else if (opt.error && !error_done && strcmp(type, opt.error) == 0) {
			status = "Error";
			error_done = 1;
		}
		if (strcmp(type, "DeclarativeManagement") == 0) {
			/* mdm/commands/declarativemanagement.yaml: Data, the TokensResponse. */
			struct sim_buf data = sim_plist_data(sim_plist_get(cmd, "Data"));

			if (data.len > 0) {
				struct sim_json *j = sim_json_parse(
				        data.p, data.len, "DeclarativeManagement Data");
				const char *t = sim_json_str(sim_json_get(
				        sim_json_get(j, "SyncTokens"), "DeclarationsToken"));

				if (t == NULL)
					sim_fail("DeclarativeManagement: Data has no "
					         "SyncTokens/DeclarationsToken");
				sim_state_set("ddm_pushed_token", t);
				sim_json_free(j);
			}
			sim_buf_free(&data);
		}
		fprintf(acks, "%s delivered\n", uuid);
		fflush(acks);
		sim_say("command %s %s -> %s", uuid, type, status);
		fprintf(log, "%s %s %s\n", uuid, type, status);
		fflush(log);
		body = report(status, uuid, type);
		answered = uuid;
		free(type);
		xmlFreeDoc(doc);
		sim_http_free(&h);
	}
	fclose(log);
	fclose(acks);
}

/* ---------------------------------------------------------------- Declarative Device Management */

/*
 * One DeclarativeManagement check-in (mdm/checkin/declarativemanagement.yaml):
 * Endpoint, and Data when given; keys sorted as CFPropertyList writes them.
 */
static void ddm_checkin(const char *endpoint, const struct sim_buf *data, struct sim_http *h)
{
	struct sim_pw w;
	char what[96];

	sim_pw_begin(&w);
	if (data != NULL)
		sim_pw_key_data(&w, "Data", data->p, data->len);
	sim_pw_key_string(&w, "Endpoint", endpoint);
	sim_pw_key_string(&w, "MessageType", "DeclarativeManagement");
	sim_pw_key_string(&w, "UDID", sim_state_need("udid"));
	sim_pw_end(&w);
	snprintf(what, sizeof(what), "ddm-%.80s", endpoint);
	for (char *c = what; *c != '\0'; c++)
		if (*c == '/')
			*c = '_';
	mdm_put(sim_state_need("checkin_url"), CHECKIN_CTYPE, what, &w.out, h);
	sim_buf_free(&w.out);
}

/* An endpoint that must answer 200 with JSON: the value (and the bytes in *raw). */
static struct sim_json *ddm_json(const char *endpoint, struct sim_buf *raw)
{
	struct sim_http h;
	struct sim_json *j;

	ddm_checkin(endpoint, NULL, &h);
	if (h.status != 200)
		sim_fail("ddm %s: HTTP %ld: %.200s", endpoint, h.status,
		        h.resp.p ? (char *)h.resp.p : "");
	if (strncasecmp(h.resp_type, "application/json", 16) != 0)
		sim_fail("ddm %s: Content-Type %s, not application/json", endpoint, h.resp_type);
	j = sim_json_parse(h.resp.p, h.resp.len, endpoint);
	if (raw != NULL)
		sim_buf_append(raw, h.resp.p, h.resp.len);
	sim_http_free(&h);
	return j;
}

static const char *need_json_str(const struct sim_json *obj, const char *key, const char *what)
{
	const char *v = sim_json_str(sim_json_get(obj, key));

	if (v == NULL)
		sim_fail("%s: no %s string", what, key);
	return v;
}

/* A declaration's Identifier becomes a file name here: only what an identifier may hold. */
static void need_safe_id(const char *id)
{
	if (*id == '\0' || *id == '.' || strlen(id) > 256 ||
	        strspn(id,
	                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@+-") !=
	                strlen(id))
		sim_fail("ddm: declaration Identifier \"%.80s\" is not one this device stores", id);
}

static const char *const ddm_kinds[4][2] = {{"Activations", "activation"},
        {"Configurations", "configuration"}, {"Assets", "asset"}, {"Management", "management"}};

static int ddm_line_in(const char *lines, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = lines; p != NULL && *p != '\0';) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && memcmp(p, line, n) == 0)
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

/*
 * configuration.legacy (legacy.yaml): the device downloads ProfileURL (https,
 * "hosted by the MDM server") with its identity, as DIR/ddm-profile-ID.
 */
static void ddm_legacy_fetch(const char *id, const char *url, FILE *log)
{
	struct sim_http h;
	char file[400];

	if (strncmp(url, "https://", 8) != 0)
		sim_fail("ddm: legacy ProfileURL %.200s is not https (legacy.yaml)", url);
	memset(&h, 0, sizeof(h));
	h.method = "GET";
	h.url = url;
	h.ca_file = sim_state_need("tls_ca");
	h.client_cert = sim_path("identity.pem");
	h.client_key = sim_path("identity.key");
	sim_http_do(&h);
	sim_log_exchange("ddm-profile", "", 0, h.resp.p, h.resp.len);
	if (h.status != 200 || h.resp.len == 0)
		sim_fail("ddm: legacy profile %s: HTTP %ld", url, h.status);
	snprintf(file, sizeof(file), "ddm-profile-%s", id);
	sim_file_write(sim_path(file), h.resp.p, h.resp.len);
	fprintf(log, "profile %s %zu\n", id, h.resp.len);
	sim_http_free(&h);
}

static void step_ddm(void)
{
	struct sim_json *tok = ddm_json("tokens", NULL), *items = NULL;
	const struct sim_json *sync = sim_json_get(tok, "SyncTokens"), *decls;
	const char *dt, *it;
	struct sim_buf cur = {NULL, 0}, st[4] = {{NULL, 0}}, report = {NULL, 0}, old = {NULL, 0};
	char *target_os = NULL, *target_build = NULL;
	FILE *log = fopen(sim_path("ddm.log"), "a");
	struct sim_http h;
	int fetched = 0, total = 0;

	if (log == NULL)
		sim_fail("cannot write %s", sim_path("ddm.log"));
	/* declarative/protocol/tokensresponse.yaml */
	dt = need_json_str(sync, "DeclarationsToken", "tokens: SyncTokens");
	need_json_str(sync, "Timestamp", "tokens: SyncTokens");
	/* declarative/protocol/declarationitemsresponse.yaml: every key required. */
	items = ddm_json("declaration-items", NULL);
	decls = sim_json_get(items, "Declarations");
	it = need_json_str(items, "DeclarationsToken", "declaration-items");
	if (strcmp(it, dt) != 0)
		sim_fail("ddm: declaration-items' DeclarationsToken %s is not tokens' %s", it, dt);
	if (sim_file_exists(sim_path("ddm-current"))) {
		old = sim_file_read(sim_path("ddm-current"));
		sim_buf_append(&old, "", 1);
	}
	for (int k = 0; k < 4; k++) {
		const struct sim_json *arr = sim_json_get(decls, ddm_kinds[k][0]);

		if (arr == NULL || arr->type != SIM_JSON_ARRAY)
			sim_fail(
			        "declaration-items: Declarations has no %s array", ddm_kinds[k][0]);
		for (size_t i = 0; i < arr->n; i++) {
			const char *id =
			        need_json_str(arr->kids[i], "Identifier", "declaration item");
			const char *stok =
			        need_json_str(arr->kids[i], "ServerToken", "declaration item");
			char file[400], line[700], endpoint[400], prefix[64];
			struct sim_json *dj;
			const struct sim_json *pl;
			const char *type;

			need_safe_id(id);
			snprintf(file, sizeof(file), "ddm-%s-%s.json", ddm_kinds[k][1], id);
			snprintf(line, sizeof(line), "%s %s %s", ddm_kinds[k][1], id, stok);
			total++;
			if (ddm_line_in((const char *)old.p, line) &&
			        sim_file_exists(sim_path(file))) {
				fprintf(log, "kept %s\n", line);
				struct sim_buf b = sim_file_read(sim_path(file));
				dj = sim_json_parse(b.p, b.len, file);
				sim_buf_free(&b);
			} else {
				snprintf(endpoint, sizeof(endpoint), "declaration/%s/%s",
				        ddm_kinds[k][1], id);
				struct sim_buf raw = {NULL, 0};

				dj = ddm_json(endpoint, &raw);
				/* declarationbase.yaml: Type, Identifier, ServerToken, Payload. */
				if (strcmp(need_json_str(dj, "Identifier", endpoint), id) != 0 ||
				        strcmp(need_json_str(dj, "ServerToken", endpoint), stok) !=
				                0)
					sim_fail("%s: Identifier or ServerToken differ from the "
					         "item's",
					        endpoint);
				snprintf(prefix, sizeof(prefix), "com.apple.%s.", ddm_kinds[k][1]);
				if (strncmp(need_json_str(dj, "Type", endpoint), prefix,
				            strlen(prefix)) != 0)
					sim_fail("%s: Type is not a %s", endpoint, prefix);
				pl = sim_json_get(dj, "Payload");
				if (pl != NULL && pl->type != SIM_JSON_OBJECT)
					sim_fail("%s: Payload is not an object", endpoint);
				sim_file_write(sim_path(file), raw.p, raw.len);
				sim_buf_free(&raw);
				fprintf(log, "fetched %s\n", line);
				fetched++;
			}
			type = sim_json_str(sim_json_get(dj, "Type"));
			pl = sim_json_get(dj, "Payload");
			if (type != NULL && strcmp(type, "com.apple.configuration.legacy") == 0 &&
			        !ddm_line_in((const char *)old.p, line))
				ddm_legacy_fetch(
				        id, need_json_str(pl, "ProfileURL", "legacy Payload"), log);
			if (type != NULL &&
			        strcmp(type,
			                "com.apple.configuration.softwareupdate.enforcement."
			                "specific") == 0 &&
			        sim_json_str(sim_json_get(pl, "TargetOSVersion")) != NULL) {
				free(target_os);
				free(target_build);
				target_os = sim_xstrdup(
				        sim_json_str(sim_json_get(pl, "TargetOSVersion")));
				target_build = sim_json_str(sim_json_get(pl, "TargetBuildVersion"))
				        ? sim_xstrdup(sim_json_str(
				                  sim_json_get(pl, "TargetBuildVersion")))
				        : NULL;
			}
			sim_json_free(dj);
			sim_buf_puts(&cur, line);
			sim_buf_puts(&cur, "\n");
			/* management.declarations: each one valid and active, as applied. */
			sim_buf_puts(&st[k], st[k].len ? "," : "");
			sim_buf_puts(&st[k], "{\"active\":true,\"identifier\":");
			sim_json_quote(&st[k], id);
			sim_buf_puts(&st[k], ",\"server-token\":");
			sim_json_quote(&st[k], stok);
			sim_buf_puts(&st[k], ",\"valid\":\"valid\"}");
		}
	}
	/* What the server no longer lists is removed. */
	for (char *p = (char *)old.p; p != NULL && *p != '\0';) {
		char *e = strchr(p, '\n');

		if (e != NULL)
			*e = '\0';
		sim_buf_append(&cur, "", 1);
		if (*p != '\0' && !ddm_line_in((const char *)cur.p, p)) {
			char kind[32], id[300], file[400];

			if (sscanf(p, "%31s %299s", kind, id) == 2) {
				snprintf(file, sizeof(file), "ddm-%s-%s.json", kind, id);
				unlink(sim_path(file));
			}
			fprintf(log, "removed %s\n", p);
		}
		cur.len--;
		p = e ? e + 1 : NULL;
	}
	sim_file_write(sim_path("ddm-current"), cur.p, cur.len);
	/* declarative/protocol/statusreport.yaml, the shape of kmfddm's status.1st.json. */
	sim_buf_puts(&report, "{\"StatusItems\":{\"device\":{\"model\":{\"family\":");
	sim_buf_puts(&report, is_mac() ? "\"Mac\"" : "\"iPhone\"");
	sim_buf_puts(&report, "},\"operating-system\":{\"version\":");
	sim_buf_puts(&report, is_mac() ? "\"14.5\"" : "\"17.5.1\"");
	sim_buf_puts(&report, "}},\"management\":{\"declarations\":{");
	for (int k = 0; k < 4; k++) {
		char key[64];

		snprintf(key, sizeof(key), "%s\"%s\":[", k ? "," : "",
		        k == 3           ? "management"
		                : k == 0 ? "activations"
		                : k == 1 ? "configurations"
		                         : "assets");
		sim_buf_puts(&report, key);
		if (st[k].len)
			sim_buf_append(&report, st[k].p, st[k].len);
		sim_buf_puts(&report, "]");
		sim_buf_free(&st[k]);
	}
	sim_buf_puts(&report, "}}");
	if (target_os != NULL) {
		/* softwareupdate.install-state and pending-version (declarative/status). */
		sim_buf_puts(&report,
		        ",\"softwareupdate\":{\"install-state\":\"downloading\","
		        "\"pending-version\":{\"os-version\":");
		sim_json_quote(&report, target_os);
		if (target_build != NULL) {
			sim_buf_puts(&report, ",\"build-version\":");
			sim_json_quote(&report, target_build);
		}
		sim_buf_puts(&report, "}}");
	}
	sim_buf_puts(&report, "},\"Errors\":[],\"FullReport\":true}");
	ddm_checkin("status", &report, &h);
	if (h.status != 200)
		sim_fail(
		        "ddm status: HTTP %ld: %.200s", h.status, h.resp.p ? (char *)h.resp.p : "");
	sim_http_free(&h);
	sim_state_set("ddm_token", dt);
	sim_say("ddm: DeclarationsToken %s, %d declarations (%d fetched), status sent", dt, total,
	        fetched);
	fclose(log);
	free(target_os);
	free(target_build);
	sim_buf_free(&cur);
	sim_buf_free(&old);
	sim_buf_free(&report);
	sim_json_free(tok);
	sim_json_free(items);
}

/* DIR/name: the answer's HTTP status on a line, then its body, for the e2e suites. */
static void save_answer(const char *name, const struct sim_http *h)
{
	FILE *f = fopen(sim_path(name), "w");

	if (f == NULL)
		sim_fail("cannot write %s", sim_path(name));
	fprintf(f, "%ld\n", h->status);
	if (h->resp.len > 0)
		fwrite(h->resp.p, 1, h->resp.len, f);
	fclose(f);
}

static void step_ddm_endpoint(void)
{
	struct sim_buf data = {NULL, 0};
	struct sim_http h;

	if (opt.endpoint == NULL)
		sim_fail("ddm-endpoint needs --endpoint E");
	if (opt.body != NULL)
		data = sim_file_read(opt.body);
	ddm_checkin(opt.endpoint, opt.body ? &data : NULL, &h);
	save_answer("ddm-answer", &h);
	sim_say("ddm-endpoint %s: HTTP %ld", opt.endpoint, h.status);
	sim_http_free(&h);
	sim_buf_free(&data);
}

/* ReturnToService (mdm/checkin/returntoservice.yaml): the answer must have its shape. */
static void step_return_to_service(void)
{
	static const char *const data_keys[] = {
	        "WiFiProfileData", "MDMProfileData", "BootstrapToken"};
	struct sim_pw w;
	struct sim_http h;
	xmlDocPtr doc;
	xmlNodePtr rts, en;
	FILE *f;

	sim_pw_begin(&w);
	sim_pw_key_string(&w, "MessageType", "ReturnToService");
	sim_pw_key_string(&w, "UDID", sim_state_need("udid"));
	sim_pw_end(&w);
	mdm_put(sim_state_need("checkin_url"), CHECKIN_CTYPE, "ReturnToService", &w.out, &h);
	sim_buf_free(&w.out);
	if (h.status != 200)
		sim_fail("ReturnToService: HTTP %ld", h.status);
	doc = sim_plist_parse(h.resp.p, h.resp.len, "ReturnToService answer");
	rts = sim_plist_get(sim_plist_root(doc), "ReturnToService");
	en = sim_plist_get(rts, "Enabled");
	if (!sim_plist_is(rts, "dict") || (!sim_plist_is(en, "true") && !sim_plist_is(en, "false")))
		sim_fail("ReturnToService: the answer has no ReturnToService dict with Enabled "
		         "(returntoservice.yaml responsekeys)");
	f = fopen(sim_path("rts-answer"), "w");
	if (f == NULL)
		sim_fail("cannot write %s", sim_path("rts-answer"));
	fprintf(f, "Enabled %d\n", sim_plist_is(en, "true"));
	for (size_t i = 0; i < sizeof(data_keys) / sizeof(data_keys[0]); i++) {
		xmlNodePtr v = sim_plist_get(rts, data_keys[i]);
		struct sim_buf b;

		if (v == NULL)
			continue;
		if (!sim_plist_is(v, "data"))
			sim_fail("ReturnToService: %s is not <data>", data_keys[i]);
		b = sim_plist_data(v);
		fprintf(f, "%s %zu\n", data_keys[i], b.len);
		sim_buf_free(&b);
	}
	fclose(f);
	sim_say("ReturnToService: Enabled %d", sim_plist_is(en, "true"));
	xmlFreeDoc(doc);
	sim_http_free(&h);
}

/* GetToken (mdm/checkin/gettoken.yaml), for the answer of a server without a token service. */
static void step_get_token(void)
{
	struct sim_pw w;
	struct sim_http h;

	sim_pw_begin(&w);
	sim_pw_key_string(&w, "MessageType", "GetToken");
	sim_pw_key_string(&w, "TokenServiceType", "com.apple.maid");
	sim_pw_key_string(&w, "UDID", sim_state_need("udid"));
	sim_pw_end(&w);
	mdm_put(sim_state_need("checkin_url"), CHECKIN_CTYPE, "GetToken", &w.out, &h);
	sim_buf_free(&w.out);
	save_answer("gettoken-answer", &h);
	sim_say("GetToken: HTTP %ld", h.status);
	sim_http_free(&h);
}

/* The Mdm-Signature this device would send over --body, as DIR/mdm-signature.der. */
static void step_sign(void)
{
	struct sim_buf body, der;
	X509 *c = sim_load_cert(sim_path("identity.pem"));
	EVP_PKEY *k = sim_load_key(sim_path("identity.key"));
	char *b64;

	if (opt.body == NULL)
		sim_fail("sign needs --body FILE");
	body = sim_file_read(opt.body);
	b64 = sim_mdm_signature(c, k, sim_state_need("sig_digest"), body.p, body.len);
	der = sim_unb64(b64);
	sim_file_write(sim_path("mdm-signature.der"), der.p, der.len);
	sim_say("sign: %s (%zu bytes)", sim_path("mdm-signature.der"), der.len);
	free(b64);
	sim_buf_free(&body);
	sim_buf_free(&der);
	X509_free(c);
	EVP_PKEY_free(k);
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr, "usage: applesim STEP... --dir DIR [options] (see tests/sim/applesim.c)\n");
	exit(2);
}

static void device_setup(void)
{
	const char *dev = setting("device", opt.device, "iphone");
	char udid[64], uuid[37], serial[16];
	uint8_t b[20];

	if (strcmp(dev, "iphone") != 0 && strcmp(dev, "mac") != 0)
		sim_fail("--device is iphone or mac");
	if (opt.udid == NULL && sim_state_get("udid") == NULL) {
		/* iPhone: 00008110-001A2B3C4D5E801E form; Mac: an upper-case UUID. */
		sim_random(b, sizeof(b));
		if (strcmp(dev, "mac") == 0) {
			sim_uuid(uuid);
			snprintf(udid, sizeof(udid), "%s", uuid);
		} else {
			char h[41];
			sim_hex(b, sizeof(b), 1, h);
			snprintf(udid, sizeof(udid), "00008110-%.16s", h);
		}
		opt.udid = udid;
	}
	setting("udid", opt.udid, NULL);
	if (sim_state_get("serial") == NULL) {
		sim_random(b, 6);
		sim_hex(b, 6, 1, serial);
		sim_state_set("serial", serial);
	}
	setting("tls_ca", opt.tls_ca, NULL);
	setting("attest_standin", opt.attest_standin, getenv("MDM_ATTEST_STANDIN"));
	setting("attest_dir", opt.attest_dir, getenv("MDM_ATTEST_DIR"));
	setting("auth", opt.auth, "profile");
	setting("sig_digest", opt.sig_digest, strcmp(dev, "mac") == 0 ? "sha256" : "sha1");
	if (opt.scep_get)
		sim_state_seti("scep_get", 1);
	if (strcmp(sim_state_get("auth"), "profile") != 0 && strcmp(sim_state_get("auth"), "tls") &&
	        strcmp(sim_state_get("auth"), "signature") && strcmp(sim_state_get("auth"), "both"))
		sim_fail("--auth is profile, tls, signature or both");
}

static void run_step(const char *s)
{
	if (strcmp(s, "profile") == 0)
		step_profile();
	else if (strcmp(s, "scep") == 0)
		step_scep();
	else if (strcmp(s, "acme") == 0)
		step_acme();
	else if (strcmp(s, "identity") == 0)
		run_step(strcmp(sim_state_need("identity_kind"), "acme") == 0 ? "acme" : "scep");
	else if (strcmp(s, "authenticate") == 0)
		step_authenticate();
	else if (strcmp(s, "tokenupdate") == 0)
		step_tokenupdate();
	else if (strcmp(s, "user-authenticate") == 0)
		step_user_authenticate();
	else if (strcmp(s, "user-tokenupdate") == 0)
		step_user_tokenupdate();
	else if (strcmp(s, "commands") == 0)
		step_commands();
	else if (strcmp(s, "renew") == 0)
		step_renew();
	else if (strcmp(s, "checkout") == 0)
		step_checkout();
	else if (strcmp(s, "sign") == 0)
		step_sign();
	else if (strcmp(s, "ddm") == 0)
		step_ddm();
	else if (strcmp(s, "ddm-endpoint") == 0)
		step_ddm_endpoint();
	else if (strcmp(s, "return-to-service") == 0)
		step_return_to_service();
	else if (strcmp(s, "get-token") == 0)
		step_get_token();
	else if (strcmp(s, "enroll") == 0 || strcmp(s, "lifecycle") == 0) {
		run_step("profile");
		run_step("identity");
		run_step("authenticate");
		run_step("tokenupdate");
		if (is_mac()) {
			run_step("user-authenticate");
			run_step("user-tokenupdate");
		}
		if (strcmp(s, "lifecycle") == 0) {
			run_step("commands");
			/* An ACME identity is renewed by a new payload, not by SCEP. */
			if (strcmp(sim_state_need("identity_kind"), "acme") != 0) {
				run_step("renew");
				run_step("tokenupdate");
				run_step("commands");
			}
			run_step("checkout");
		}
	} else {
		sim_fail("unknown step %s", s);
	}
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
	        {"dir", required_argument, NULL, 'd'},
	        {"device", required_argument, NULL, 'D'},
	        {"udid", required_argument, NULL, 'u'},
	        {"enroll-url", required_argument, NULL, 'e'},
	        {"trust", required_argument, NULL, 't'},
	        {"tls-ca", required_argument, NULL, 'c'},
	        {"auth", required_argument, NULL, 'a'},
	        {"sig-digest", required_argument, NULL, 's'},
	        {"scep-get", no_argument, NULL, 'g'},
	        {"vectors", required_argument, NULL, 'v'},
	        {"challenge", required_argument, NULL, 'C'},
	        {"digest", required_argument, NULL, 'm'},
	        {"tamper-csr", no_argument, NULL, 'T'},
	        {"transaction-id", required_argument, NULL, 'x'},
	        {"expect-failure", required_argument, NULL, 'F'},
	        {"notnow", required_argument, NULL, 'N'},
	        {"error", required_argument, NULL, 'E'},
	        {"body", required_argument, NULL, 'b'},
	        {"endpoint", required_argument, NULL, 'n'},
	        {"profile-file", required_argument, NULL, 'P'},
	        {"attest-standin", required_argument, NULL, 'A'},
	        {"attest-dir", required_argument, NULL, 'B'},
	        {"acme-expect", required_argument, NULL, 'X'},
	        {"attest-token", required_argument, NULL, 'K'},
	        {"csr-other-key", no_argument, NULL, 'O'},
	        {NULL, 0, NULL, 0},
	};
	int ch;

	opt.vectors = getenv("MDM_VECTORS");
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'd':
			opt.dir = optarg;
			break;
		case 'D':
			opt.device = optarg;
			break;
		case 'u':
			opt.udid = optarg;
			break;
		case 'e':
			opt.enroll_url = optarg;
			break;
		case 't':
			opt.trust = optarg;
			break;
		case 'c':
			opt.tls_ca = optarg;
			break;
		case 'P':
			opt.profile_file = optarg;
			break;
		case 'a':
			opt.auth = optarg;
			break;
		case 's':
			opt.sig_digest = optarg;
			break;
		case 'g':
			opt.scep_get = 1;
			break;
		case 'v':
			opt.vectors = optarg;
			break;
		case 'C':
			opt.challenge = optarg;
			break;
		case 'm':
			opt.digest = optarg;
			break;
		case 'T':
			opt.tamper_csr = 1;
			break;
		case 'x':
			opt.txid = optarg;
			break;
		case 'F':
			opt.expect_failure = optarg;
			break;
		case 'N':
			opt.notnow = optarg;
			break;
		case 'E':
			opt.error = optarg;
			break;
		case 'b':
			opt.body = optarg;
			break;
		case 'n':
			opt.endpoint = optarg;
			break;
		case 'A':
			opt.attest_standin = optarg;
			break;
		case 'B':
			opt.attest_dir = optarg;
			break;
		case 'X':
			opt.acme_expect = optarg;
			break;
		case 'K':
			opt.attest_token = optarg;
			break;
		case 'O':
			opt.csr_other_key = 1;
			break;
		default:
			usage();
		}
	}
	if (opt.dir == NULL || optind >= argc)
		usage();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		sim_fail("curl_global_init failed");
	sim_set_dir(opt.dir);
	sim_state_load();
	device_setup();
	for (int i = optind; i < argc; i++)
		run_step(argv[i]);
	sim_say("ok: %s %s", sim_state_get("device"), sim_state_get("udid"));
	curl_global_cleanup();
	xmlCleanupParser();
	return 0;
}
