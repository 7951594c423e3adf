/*
 * mdmctl: the operator's command line.  Reads the same configuration as
 * the FastCGI programs (MDM_CONFIG, MDM_<KEY>).
 *
 *   mdmctl db migrate     apply the schema migrations not yet applied
 *   mdmctl db status      print the applied and the latest schema version
 *   mdmctl config show    print the effective configuration (secrets hidden)
 *   mdmctl config keys    list every configuration key with its meaning
 *   mdmctl ca init --subject DN (--key-out FILE | --key URI) [--days N] [--bits N]
 *                         create the CA (the key stays in FILE or the HSM)
 *   mdmctl ca renew [--days N]
 *                         stage the next CA: same key, new validity
 *   mdmctl ca rekey (--key-out FILE | --key URI) [--days N] [--bits N]
 *                         stage the next CA: new key, same subject
 *   mdmctl ca activate    the staged CA becomes active; the old one retires
 *   mdmctl ca show        list the CA certificates and their states
 *   mdmctl ca cert        print the active CA certificate (PEM)
 *   mdmctl ca bundle [--out FILE]
 *                         every CA a device identity can chain to (active,
 *                         next, retired until expiry), PEM: to FILE, else to
 *                         the configured tls_client_ca_file, else stdout.
 *                         init, renew, rekey and activate rewrite
 *                         tls_client_ca_file when it is set (lighttpd)
 *   mdmctl ca server-cert --subject DN --key-out FILE --cert-out FILE [--days N]
 *                         issue a server certificate (the profile signer)
 *   mdmctl push-cert import (--cert FILE (--key FILE | --key-uri pkcs11:...) |
 *                            --p12 FILE --password-file FILE --key-out FILE)
 *                         import the MDM push certificate (APNs)
 *   mdmctl push-cert list the push certificates by topic, with their use
 *   mdmctl push-cert remove TOPIC [--force]
 *                         remove a topic's push certificate (refused while
 *                         active enrollments use it, unless --force)
 *   mdmctl profile enroll [--topic TOPIC] [--unsigned] [--out FILE]
 *                         the enrollment profile, with a fresh one-time challenge
 *   mdmctl profile ota-answer --phase 2|3 --udid UDID [--encrypt-to CERT]
 *                         [--topic TOPIC] [--unsigned] [--out FILE]
 *                         what the OTA profile service answers that device in
 *                         phase 2 (identity only) or 3 (encrypted to CERT)
 *   mdmctl profile encrypt --to CERT --in FILE [--out FILE]
 *                         FILE's payloads encrypted to CERT and signed, as an
 *                         encrypted InstallProfile is delivered
 *   mdmctl device list [--table|--tsv|--json]
 *                         every device channel: identity, enrolled, last seen, queue
 *   mdmctl device show UDID [--table|--tsv|--json]
 *                         one device: channels, identity, queue, last 10 answers
 *   mdmctl queue UDID [--table|--tsv|--json]
 *                         the commands waiting for a device, in delivery order
 *   mdmctl metrics        the server's state as Prometheus text (mdm.metrics_text),
 *                         for a node exporter's textfile collector
 */
#include "ca.h"
#include "command.h"
#include "config.h"
#include "db.h"
#include "enroll.h"
#include "log.h"
#include "identity.h"
#include "migrate.h"
#include "ota.h"
#include "pushcert.h"
#include "report.h"
#include "x509.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: mdmctl db migrate | db status\n"
	        "       mdmctl config show | config keys\n"
	        "       mdmctl ca init --subject DN (--key-out FILE | --key URI) [--days N] "
	        "[--bits N]\n"
	        "       mdmctl ca renew [--days N]\n"
	        "       mdmctl ca rekey (--key-out FILE | --key URI) [--days N] [--bits N]\n"
	        "       mdmctl ca activate | ca show | ca cert | ca bundle [--out FILE]\n"
	        "       mdmctl ca server-cert --subject DN --key-out FILE --cert-out FILE "
	        "[--days N]\n"
	        "       mdmctl push-cert import --cert FILE (--key FILE | --key-uri URI)\n"
	        "       mdmctl push-cert import --p12 FILE --password-file FILE --key-out FILE\n"
	        "       mdmctl push-cert list\n"
	        "       mdmctl push-cert remove TOPIC [--force]\n"
	        "       mdmctl profile enroll [--topic TOPIC] [--unsigned] [--out FILE]\n"
	        "       mdmctl profile ota-answer --phase 2|3 --udid UDID [--encrypt-to CERT] "
	        "[--topic TOPIC] [--unsigned] [--out FILE]\n"
	        "       mdmctl profile encrypt --to CERT --in FILE [--out FILE]\n"
	        "       mdmctl device list [--table|--tsv|--json]\n"
	        "       mdmctl device show UDID [--table|--tsv|--json]\n"
	        "       mdmctl queue UDID [--table|--tsv|--json]\n"
	        "       mdmctl metrics\n");
}

struct ca_opts {
	const char *subject, *key_out, *key, *cert_out, *out;
	int days, bits;
};

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi)
		return 0;
	*out = (int)v;
	return 1;
}

/* --name value pairs after `ca <sub>`. */
static int parse_ca_opts(int argc, char **argv, struct ca_opts *o)
{
	for (int i = 0; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			fprintf(stderr, "mdmctl: %s needs a value\n", k);
			return 0;
		}
		if (strcmp(k, "--subject") == 0)
			o->subject = v;
		else if (strcmp(k, "--key-out") == 0)
			o->key_out = v;
		else if (strcmp(k, "--key") == 0)
			o->key = v;
		else if (strcmp(k, "--cert-out") == 0)
			o->cert_out = v;
		else if (strcmp(k, "--out") == 0)
			o->out = v;
		else if (strcmp(k, "--days") == 0 && parse_int(v, 1, 36500, &o->days))
			continue;
		else if (strcmp(k, "--bits") == 0 && parse_int(v, 2048, 16384, &o->bits))
			continue;
		else {
			fprintf(stderr, "mdmctl: bad option %s %s\n", k, v);
			return 0;
		}
	}
	return 1;
}

static int cmd_ca_show(db *d)
{
	db_res *r = NULL;

	if (db_exec(d,
	            "SELECT a.state, c.serial, c.subject, c.not_before, c.not_after, c.sha256, "
	            "a.key_uri FROM mdm.ca a JOIN mdm.certificate c ON c.id = a.certificate_id "
	            "ORDER BY a.id",
	            0, NULL, &r) != MDM_OK)
		return 1;
	for (int i = 0; i < db_res_rows(r); i++)
		printf("%-8s serial %s\n         subject %s\n         valid %s .. %s\n"
		       "         sha256 %s\n         key %s\n",
		        db_res_get0(r, i, 0), db_res_get0(r, i, 1), db_res_get0(r, i, 2),
		        db_res_get0(r, i, 3), db_res_get0(r, i, 4), db_res_get0(r, i, 5),
		        db_res_get0(r, i, 6));
	if (db_res_rows(r) == 0)
		printf("no CA yet: mdmctl ca init --subject '/CN=...' --key-out FILE\n");
	db_res_free(r);
	return 0;
}

static int cmd_ca_cert(db *d, config *cfg)
{
	struct ca_state *st = NULL;
	char *pem = NULL;
	size_t len;
	int status = 1;

	/* Loads the key too: proves the CA can sign before anyone trusts it. */
	if (ca_load(d, cfg, &st) != MDM_OK)
		return 1;
	if (x509_cert_to_pem(st->active, &pem, &len) == MDM_OK &&
	        fwrite(pem, 1, len, stdout) == len)
		status = 0;
	free(pem);
	ca_state_free(st);
	return status;
}

/*
 * `ca bundle`: to path, or to stdout when path is NULL.  After a change
 * of the CAs the web server that reads the file must read it again.
 */
static int cmd_ca_bundle(db *d, const char *path)
{
	char *pem = NULL;
	size_t len = 0;
	int n = 0, status = 1;

	if (path != NULL) {
		if (ca_client_bundle_write(d, path, time(NULL), &n) != MDM_OK) {
			fprintf(stderr, "mdmctl: could not write the client CA file %s\n", path);
			return 1;
		}
		printf("client CA file %s: %d CA certificate%s; reload the web server that "
		       "reads it (lighttpd: systemctl reload lighttpd)\n",
		        path, n, n == 1 ? "" : "s");
		return 0;
	}
	if (ca_client_bundle(d, time(NULL), &pem, &len, &n) == MDM_OK &&
	        fwrite(pem, 1, len, stdout) == len)
		status = 0;
	free(pem);
	return status;
}

static int cmd_ca(config *cfg, int argc, char **argv)
{
	struct ca_opts o = {NULL, NULL, NULL, NULL, NULL, 0, 2048};
	const char *sub = argv[0];
	db *d = NULL;
	mdm_err rc = MDM_ERR_INVAL;
	int status = 1;

	if (!parse_ca_opts(argc - 1, argv + 1, &o)) {
		usage(stderr);
		return 2;
	}
	if (db_new(config_get0(cfg, "db"), "mdmctl", &d) != MDM_OK)
		return 1;
	if (strcmp(sub, "init") == 0) {
		if (o.subject == NULL || (o.key_out == NULL) == (o.key == NULL)) {
			usage(stderr);
			status = 2;
			goto out;
		}
		rc = ca_init(
		        d, o.subject, o.days ? o.days : 3650, o.bits, o.key_out, o.key, time(NULL));
	} else if (strcmp(sub, "renew") == 0) {
		if (o.key_out || o.key || o.subject) {
			fprintf(stderr, "mdmctl: renew keeps the key and subject (see ca rekey)\n");
			status = 2;
			goto out;
		}
		rc = ca_stage_next(d, o.days ? o.days : 3650, o.bits, NULL, NULL, time(NULL));
	} else if (strcmp(sub, "rekey") == 0) {
		if ((o.key_out == NULL) == (o.key == NULL) || o.subject) {
			usage(stderr);
			status = 2;
			goto out;
		}
		rc = ca_stage_next(d, o.days ? o.days : 3650, o.bits, o.key_out, o.key, time(NULL));
	} else if (strcmp(sub, "server-cert") == 0) {
		if (o.subject == NULL || o.key_out == NULL || o.cert_out == NULL || o.key) {
			usage(stderr);
			status = 2;
			goto out;
		}
		rc = ca_server_cert(d, cfg, o.subject, o.days ? o.days : 825, o.bits, o.key_out,
		        o.cert_out, time(NULL));
		if (rc == MDM_OK) {
			printf("server certificate in %s, its key in %s\n", o.cert_out, o.key_out);
			status = 0;
			goto out;
		}
	} else if (strcmp(sub, "activate") == 0 && argc == 1) {
		rc = ca_activate(d);
	} else if (strcmp(sub, "cert") == 0 && argc == 1) {
		status = cmd_ca_cert(d, cfg);
		goto out;
	} else if (strcmp(sub, "bundle") == 0) {
		status = cmd_ca_bundle(d, o.out ? o.out : config_get0(cfg, "tls_client_ca_file"));
		goto out;
	} else if (strcmp(sub, "show") == 0 && argc == 1) {
		status = cmd_ca_show(d);
		goto out;
	} else {
		usage(stderr);
		status = 2;
		goto out;
	}
	if (rc != MDM_OK) {
		fprintf(stderr, "mdmctl: ca %s failed: %s (see the log line above)\n", sub,
		        err_str(rc));
		goto out;
	}
	status = cmd_ca_show(d);
	/* init, renew, rekey, activate: the set of CAs changed. */
	if (status == 0 && config_get0(cfg, "tls_client_ca_file") != NULL)
		status = cmd_ca_bundle(d, config_get0(cfg, "tls_client_ca_file"));
out:
	db_free(d);
	return status;
}

static int cmd_db(config *cfg, const char *sub)
{
	db *d = NULL;
	int status = 1, applied = 0, current = 0, latest = 0, pending = 0;

	if (db_new(config_get0(cfg, "db"), "mdmctl", &d) != MDM_OK) {
		fprintf(stderr, "mdmctl: no database configured (key db, MDM_DB)\n");
		return 1;
	}
	if (strcmp(sub, "migrate") == 0) {
		if (migrate_apply(d, &applied) != MDM_OK) {
			fprintf(stderr, "mdmctl: migration failed (see the log line above)\n");
			goto out;
		}
		if (migrate_status(d, &current, &latest, &pending) != MDM_OK)
			goto out;
		printf("schema at version %d (%d applied now)\n", current, applied);
		status = 0;
	} else if (strcmp(sub, "status") == 0) {
		if (migrate_status(d, &current, &latest, &pending) != MDM_OK) {
			fprintf(stderr, "mdmctl: cannot read the schema version\n");
			goto out;
		}
		printf("schema at version %d, latest %d", current, latest);
		if (pending > 0)
			printf(", %d migration%s not applied (run: mdmctl db migrate)", pending,
			        pending == 1 ? "" : "s");
		printf("\n");
		status = pending == 0 ? 0 : 3;
	} else {
		usage(stderr);
		status = 2;
	}
out:
	db_free(d);
	return status;
}

static int cmd_config(config *cfg, const char *sub)
{
	if (strcmp(sub, "show") == 0)
		return config_dump(cfg, stdout) == MDM_OK ? 0 : 1;
	if (strcmp(sub, "keys") == 0) {
		for (size_t i = 0; i < config_key_count(); i++) {
			const struct config_key *k = config_key_at(i);
			printf("%-20s %s (default: %s)\n", k->name, k->doc,
			        k->default_value ? k->default_value : "unset");
		}
		return 0;
	}
	usage(stderr);
	return 2;
}

struct push_opts {
	const char *cert, *key, *key_uri, *p12, *password_file, *key_out;
};

static int parse_push_opts(int argc, char **argv, struct push_opts *o)
{
	for (int i = 0; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			fprintf(stderr, "mdmctl: %s needs a value\n", k);
			return 0;
		}
		if (strcmp(k, "--cert") == 0)
			o->cert = v;
		else if (strcmp(k, "--key") == 0)
			o->key = v;
		else if (strcmp(k, "--key-uri") == 0)
			o->key_uri = v;
		else if (strcmp(k, "--p12") == 0)
			o->p12 = v;
		else if (strcmp(k, "--password-file") == 0)
			o->password_file = v;
		else if (strcmp(k, "--key-out") == 0)
			o->key_out = v;
		else {
			fprintf(stderr, "mdmctl: bad option %s\n", k);
			return 0;
		}
	}
	/* Exactly one of: --cert with --key or --key-uri; --p12 with both files. */
	if (o->p12 != NULL)
		return o->cert == NULL && o->key == NULL && o->key_uri == NULL &&
		        o->password_file != NULL && o->key_out != NULL;
	return o->cert != NULL && (o->key == NULL) != (o->key_uri == NULL) &&
	        o->password_file == NULL && o->key_out == NULL &&
	        (o->key_uri == NULL || strncmp(o->key_uri, "pkcs11:", 7) == 0);
}

static int cmd_push_list(db *d, const config *cfg)
{
	const char *def = config_get0(cfg, "mdm_topic");
	db_res *r = NULL;

	if (db_exec(d,
	            "SELECT topic, subject, serial, not_before, not_after, expired, key_uri, "
	            "imported_at, active_enrollments, enrollments, open_challenges "
	            "FROM mdm.push_certs ORDER BY topic",
	            0, NULL, &r) != MDM_OK)
		return 1;
	for (int i = 0; i < db_res_rows(r); i++)
		printf("%s%s%s\n         subject %s\n         serial %s\n         valid %s .. %s\n"
		       "         key %s\n         imported %s\n"
		       "         enrollments %s active (%s in all), %s unused profile(s)\n",
		        db_res_get0(r, i, 0),
		        strcmp(db_res_get0(r, i, 5), "t") == 0 ? " (EXPIRED)" : "",
		        def != NULL && strcmp(def, db_res_get0(r, i, 0)) == 0 ? " (mdm_topic)" : "",
		        db_res_get0(r, i, 1), db_res_get0(r, i, 2), db_res_get0(r, i, 3),
		        db_res_get0(r, i, 4), db_res_get0(r, i, 6), db_res_get0(r, i, 7),
		        db_res_get0(r, i, 8), db_res_get0(r, i, 9), db_res_get0(r, i, 10));
	if (db_res_rows(r) == 0)
		printf("no push certificate yet: mdmctl push-cert import ...\n");
	else if (db_res_rows(r) > 1 && def == NULL)
		printf("several topics and no mdm_topic: GET /enroll needs ?topic=TOPIC\n");
	db_res_free(r);
	return 0;
}

static int cmd_push_remove(db *d, const config *cfg, const char *topic, int force)
{
	const char *def = config_get0(cfg, "mdm_topic");
	char key_uri[4096];
	long long active = 0;
	mdm_err rc;

	rc = pushcert_remove(d, topic, force, &active, key_uri, sizeof(key_uri));
	if (rc == MDM_ERR_CONFLICT) {
		fprintf(stderr,
		        "mdmctl: not removed: %lld active enrollment(s) use %s; their devices "
		        "could "
		        "no longer be woken and their check-ins would be refused. --force removes "
		        "it anyway.\n",
		        active, topic);
		return 1;
	}
	if (rc == MDM_ERR_NOT_FOUND || rc == MDM_ERR_INVAL) {
		fprintf(stderr,
		        "mdmctl: no push certificate is imported for that topic "
		        "(mdmctl push-cert list)\n");
		return 1;
	}
	if (rc != MDM_OK) {
		fprintf(stderr, "mdmctl: push-cert remove failed: %s (see the log line above)\n",
		        err_str(rc));
		return 1;
	}
	printf("removed %s (%lld active enrollment(s) used it); its key stays at %s\n", topic,
	        active, key_uri);
	if (def != NULL && strcmp(def, topic) == 0)
		printf("mdm_topic still names it: GET /enroll without ?topic= answers 409 until "
		       "mdm_topic changes\n");
	return 0;
}

static int cmd_push_import(db *d, const struct push_opts *o)
{
	struct x509_st *cert = NULL;
	struct evp_pkey_st *key = NULL;
	char abs[PATH_MAX], topic[PUSHCERT_MAX_TOPIC + 1];
	const char *uri = NULL;
	enum pushcert_import_result res;
	int wrote_key = 0, status = 1;
	mdm_err rc;

	if (o->p12 != NULL) {
		if (x509_pkcs12_load(o->p12, o->password_file, &cert, &key) != MDM_OK)
			goto out;
		/* Checked before the key is written: a refused import leaves no file. */
		if (pushcert_topic(cert, topic) != MDM_OK)
			goto out;
		if (x509_key_write_pem(key, o->key_out) != MDM_OK)
			goto out;
		wrote_key = 1;
		if (realpath(o->key_out, abs) == NULL) {
			fprintf(stderr, "mdmctl: %s: %s\n", o->key_out, strerror(errno));
			goto out;
		}
		uri = abs;
	} else {
		if (x509_cert_load_file(o->cert, &cert) != MDM_OK)
			goto out;
		if (o->key_uri != NULL) {
			uri = o->key_uri;
		} else if (realpath(o->key, abs) == NULL) {
			fprintf(stderr, "mdmctl: %s: %s\n", o->key, strerror(errno));
			goto out;
		} else {
			uri = abs;
		}
		if (x509_key_load(uri, &key) != MDM_OK)
			goto out;
	}
	if ((rc = pushcert_import(d, cert, key, uri, time(NULL), topic, &res)) != MDM_OK) {
		fprintf(stderr, "mdmctl: push-cert import failed: %s (see the log line above)\n",
		        err_str(rc));
		goto out;
	}
	printf("%s %s\n",
	        res == PUSHCERT_IMPORTED           ? "imported"
	                : res == PUSHCERT_REPLACED ? "replaced (renewed) the certificate of"
	                                           : "unchanged (already imported):",
	        topic);
	wrote_key = res == PUSHCERT_UNCHANGED ? wrote_key : 0;
	status = 0;
out:
	/* A key written for an import that failed or changed nothing is not left behind. */
	if (wrote_key)
		unlink(o->key_out);
	x509_cert_free(cert);
	x509_key_free(key);
	return status;
}

static int cmd_push(config *cfg, int argc, char **argv)
{
	struct push_opts o = {0};
	db *d = NULL;
	int status = 2;

	int remove = strcmp(argv[0], "remove") == 0, force = 0;

	if (remove) {
		if (argc == 3 && strcmp(argv[2], "--force") == 0)
			force = 1;
		else if (argc != 2) {
			usage(stderr);
			return 2;
		}
	} else if (strcmp(argv[0], "import") == 0 ? !parse_push_opts(argc - 1, argv + 1, &o)
	                                          : strcmp(argv[0], "list") != 0 || argc != 1) {
		usage(stderr);
		return 2;
	}
	if (db_new(config_get0(cfg, "db"), "mdmctl", &d) != MDM_OK)
		return 1;
	if (remove)
		status = cmd_push_remove(d, cfg, argv[1], force);
	else
		status = strcmp(argv[0], "list") == 0 ? cmd_push_list(d, cfg)
		                                      : cmd_push_import(d, &o);
	db_free(d);
	return status;
}

/* The whole buffer to path, created 0600 (it holds a challenge), never replacing a file. */
static int write_new_file(const char *path, const void *buf, size_t len)
{
	const char *p = buf;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		fprintf(stderr, "mdmctl: create %s: %s\n", path, strerror(errno));
		return 0;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "mdmctl: write %s: %s\n", path, strerror(errno));
			close(fd);
			unlink(path);
			return 0;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) != 0) {
		unlink(path);
		return 0;
	}
	return 1;
}

/* A profile to --out (a new file) or to stdout; the exit status. */
static int profile_emit(const char *out, const void *p, size_t len)
{
	if (out != NULL)
		return write_new_file(out, p, len) ? 0 : 1;
	return fwrite(p, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
}

/*
 * profile ota-answer --phase 2|3 --udid UDID [--topic T] [--encrypt-to CERT]
 * [--unsigned] [--out FILE]: what the profile service answers that device
 * in phase 2 (the identity-only profile, its challenge bound to the UDID)
 * or 3 (the enrollment profile encrypted to CERT, the device identity),
 * built by the same ota_answer_profile as enroll.fcgi; a real one-time
 * challenge is made.  Nothing is checked of or recorded for the device.
 */
static int cmd_profile_ota(config *cfg, int argc, char **argv)
{
	struct enroll_state *st = NULL;
	const char *out = NULL, *asked = NULL, *udid = NULL, *to = NULL;
	char topic[PUSHCERT_MAX_TOPIC + 1], why[ENROLL_MAX_WHY];
	int unsigned_ = 0, phase = 0, status = 1;
	struct x509_st *rcpt = NULL;
	plist *profile = NULL;
	char *xml = NULL;
	uint8_t *der = NULL;
	size_t len = 0, derlen = 0;
	db *d = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--unsigned") == 0)
			unsigned_ = 1;
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
			asked = argv[++i];
		else if (strcmp(argv[i], "--udid") == 0 && i + 1 < argc)
			udid = argv[++i];
		else if (strcmp(argv[i], "--encrypt-to") == 0 && i + 1 < argc)
			to = argv[++i];
		else if (strcmp(argv[i], "--phase") == 0 && i + 1 < argc &&
		        parse_int(argv[i + 1], 2, 3, &phase))
			i++;
		else {
			usage(stderr);
			return 2;
		}
	}
	if (phase == 0 || udid == NULL || (phase == 3) != (to != NULL)) {
		fprintf(stderr,
		        "mdmctl: profile ota-answer needs --phase 2 or 3 and --udid; "
		        "--encrypt-to CERT (the device identity) with phase 3 only\n");
		return 2;
	}
	if (!identity_id_valid(udid)) {
		fprintf(stderr, "mdmctl: --udid must be 1 to %d characters of [A-Za-z0-9._:-]\n",
		        IDENTITY_MAX_ID);
		return 2;
	}
	if (to != NULL && x509_cert_load_file(to, &rcpt) != MDM_OK) {
		fprintf(stderr, "mdmctl: --encrypt-to %s: not a PEM certificate\n", to);
		return 1;
	}
	if (db_new(config_get0(cfg, "db"), "mdmctl", &d) != MDM_OK)
		goto out;
	if (enroll_state_load(d, cfg, !unsigned_, &st) != MDM_OK) {
		fprintf(stderr, "mdmctl: no profile (see the log line above)\n");
		goto out;
	}
	if (enroll_topic_choose(d, st, asked, NULL, topic, why, sizeof(why)) != MDM_OK) {
		fprintf(stderr, "mdmctl: no profile: %s\n", why);
		goto out;
	}
	if (ota_answer_profile(d, cfg, st, NULL, phase == 2 ? OTA_PHASE2 : OTA_PHASE3, udid, topic,
	            rcpt, &profile) != MDM_OK ||
	        enroll_serialize(profile, &xml, &len) != MDM_OK ||
	        (!unsigned_ && enroll_profile_sign(st, xml, len, &der, &derlen) != MDM_OK)) {
		fprintf(stderr, "mdmctl: no profile (see the log line above)\n");
		goto out;
	}
	status = profile_emit(out, unsigned_ ? (void *)xml : der, unsigned_ ? len : derlen);
out:
	enroll_free_secret(xml, len);
	enroll_free_secret(der, derlen);
	plist_free(profile);
	x509_cert_free(rcpt);
	enroll_state_free(st);
	db_free(d);
	return status;
}

/* An unsigned .mobileconfig to encrypt: 3 MiB, so that the command stays within 4 MiB. */
#define MDMCTL_MAX_PROFILE (3u << 20)

/*
 * profile encrypt --to CERT --in FILE [--out FILE]: the Payload of an
 * encrypted InstallProfile, as server.fcgi delivers it
 * (command_profile_seal): FILE's payloads encrypted to CERT (the device
 * identity), signed by the profile signer.
 */
static int cmd_profile_encrypt(config *cfg, int argc, char **argv)
{
	const char *out = NULL, *to = NULL, *in = NULL;
	struct enroll_state *st = NULL;
	struct command_signer sg = {0};
	struct x509_st *rcpt = NULL;
	char *profile = NULL, why[1024] = "";
	uint8_t *der = NULL;
	size_t len = 0, derlen = 0;
	int status = 1;
	db *d = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = argv[++i];
		else if (strcmp(argv[i], "--in") == 0 && i + 1 < argc)
			in = argv[++i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (to == NULL || in == NULL) {
		usage(stderr);
		return 2;
	}
	if (x509_cert_load_file(to, &rcpt) != MDM_OK) {
		fprintf(stderr, "mdmctl: --to %s: not a PEM certificate\n", to);
		return 1;
	}
	if (config_file_read(in, "--in", MDMCTL_MAX_PROFILE, 0, &profile, &len) != MDM_OK) {
		fprintf(stderr, "mdmctl: --in %s: cannot be read (at most %u bytes)\n", in,
		        MDMCTL_MAX_PROFILE);
		goto out;
	}
	if (db_new(config_get0(cfg, "db"), "mdmctl", &d) != MDM_OK ||
	        enroll_state_load(d, cfg, 1, &st) != MDM_OK) {
		fprintf(stderr, "mdmctl: no profile signer (see the log line above)\n");
		goto out;
	}
	sg.cert = st->signer;
	sg.key = st->key;
	sg.chain = st->chain;
	sg.nchain = st->nchain;
	if (command_profile_seal(&sg, rcpt, (const uint8_t *)profile, len, &der, &derlen, why,
	            sizeof(why)) != MDM_OK) {
		fprintf(stderr, "mdmctl: %s\n", why);
		goto out;
	}
	status = profile_emit(out, der, derlen);
out:
	enroll_free_secret(profile, len);
	free(der);
	x509_cert_free(rcpt);
	enroll_state_free(st);
	db_free(d);
	return status;
}

static int cmd_profile(config *cfg, int argc, char **argv)
{
	struct enroll_state *st = NULL;
	const char *out = NULL, *asked = NULL;
	char topic[PUSHCERT_MAX_TOPIC + 1], why[ENROLL_MAX_WHY];
	int unsigned_ = 0, status = 1;
	char *xml = NULL;
	uint8_t *der = NULL;
	size_t len = 0, derlen = 0;
	db *d = NULL;

	if (strcmp(argv[0], "ota-answer") == 0)
		return cmd_profile_ota(cfg, argc, argv);
	if (strcmp(argv[0], "encrypt") == 0)
		return cmd_profile_encrypt(cfg, argc, argv);
	if (strcmp(argv[0], "enroll") != 0) {
		usage(stderr);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--unsigned") == 0)
			unsigned_ = 1;
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
			asked = argv[++i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (db_new(config_get0(cfg, "db"), "mdmctl", &d) != MDM_OK)
		return 1;
	if (enroll_state_load(d, cfg, !unsigned_, &st) != MDM_OK) {
		fprintf(stderr, "mdmctl: no enrollment profile (see the log line above)\n");
		goto out;
	}
	if (enroll_topic_choose(d, st, asked, NULL, topic, why, sizeof(why)) != MDM_OK) {
		/* The same reasons GET /enroll answers, with --topic for ?topic=. */
		fprintf(stderr, "mdmctl: no enrollment profile: %s%s\n", why,
		        asked == NULL && strstr(why, "topic=<topic>") != NULL
		                ? " (here: --topic TOPIC)"
		                : "");
		goto out;
	}
	if (enroll_profile_xml(d, cfg, st, NULL, topic, &xml, &len) != MDM_OK) {
		fprintf(stderr, "mdmctl: no enrollment profile (see the log line above)\n");
		goto out;
	}
	if (!unsigned_ && enroll_profile_sign(st, xml, len, &der, &derlen) != MDM_OK)
		goto out;
	status = profile_emit(out, unsigned_ ? (void *)xml : der, unsigned_ ? len : derlen);
out:
	enroll_free_secret(xml, len);
	enroll_free_secret(der, derlen);
	enroll_state_free(st);
	db_free(d);
	return status;
}

/*
 * device list | device show UDID | queue UDID, each with an optional
 * format (report.h): what operators ask most, without writing SQL.
 */
static int cmd_report(config *cfg, const char *what, int argc, char **argv)
{
	int list = strcmp(what, "device") == 0 && argc >= 1 && strcmp(argv[0], "list") == 0;
	int show = strcmp(what, "device") == 0 && argc >= 2 && strcmp(argv[0], "show") == 0;
	int queue = strcmp(what, "queue") == 0 && argc >= 1;
	int nargs = list ? 1 : show ? 2 : 1;
	const char *udid = show ? argv[1] : queue ? argv[0] : NULL;
	enum report_format f;
	db *d = NULL;
	mdm_err rc;

	if ((!list && !show && !queue) || argc > nargs + 1 ||
	        !report_format_parse(argc > nargs ? argv[nargs] : NULL, &f)) {
		usage(stderr);
		return 2;
	}
	if (db_new(config_get0(cfg, "db"), "mdmctl", &d) != MDM_OK)
		return 1;
	rc = list      ? report_devices(d, stdout, f)
	        : show ? report_device(d, udid, stdout, f)
	               : report_queue(d, udid, stdout, f);
	db_free(d);
	if (rc == MDM_ERR_NOT_FOUND)
		fprintf(stderr, "mdmctl: no device has that UDID (mdmctl device list)\n");
	else if (rc != MDM_OK)
		fprintf(stderr, "mdmctl: %s failed: %s (see the log line above)\n", what,
		        err_str(rc));
	return rc == MDM_OK ? 0 : 1;
}

/* metrics: mdm.metrics_text() on stdout, as it is (it ends with a newline). */
static int cmd_metrics(config *cfg)
{
	db *d = NULL;
	db_res *r = NULL;
	const char *text;
	int status = 1;

	if (db_new(config_get0(cfg, "db"), "mdmctl", &d) != MDM_OK)
		return 1;
	if (db_exec(d, "SELECT mdm.metrics_text()", 0, NULL, &r) == MDM_OK &&
	        (text = db_res_get0(r, 0, 0)) != NULL)
		status = fputs(text, stdout) == EOF || fflush(stdout) != 0;
	else
		fprintf(stderr, "mdmctl: metrics failed (see the log line above)\n");
	db_res_free(r);
	db_free(d);
	return status;
}

int main(int argc, char **argv)
{
	config *cfg = NULL;
	enum log_level level;
	int status = 2;

	log_init("mdmctl", MDM_LOG_INFO);
	if (argc >= 3 &&
	        (strcmp(argv[1], "ca") == 0 || strcmp(argv[1], "push-cert") == 0 ||
	                strcmp(argv[1], "profile") == 0 || strcmp(argv[1], "device") == 0 ||
	                strcmp(argv[1], "queue") == 0)) {
		if (config_load(&cfg) != MDM_OK)
			return 1;
		if (log_level_parse(config_get0(cfg, "log_level"), &level) == MDM_OK)
			log_set_level(level);
		if (strcmp(argv[1], "ca") == 0)
			status = cmd_ca(cfg, argc - 2, argv + 2);
		else if (strcmp(argv[1], "push-cert") == 0)
			status = cmd_push(cfg, argc - 2, argv + 2);
		else if (strcmp(argv[1], "device") == 0 || strcmp(argv[1], "queue") == 0)
			status = cmd_report(cfg, argv[1], argc - 2, argv + 2);
		else
			status = cmd_profile(cfg, argc - 2, argv + 2);
		config_free(cfg);
		return status;
	}
	if (argc == 2 && strcmp(argv[1], "metrics") == 0) {
		if (config_load(&cfg) != MDM_OK)
			return 1;
		if (log_level_parse(config_get0(cfg, "log_level"), &level) == MDM_OK)
			log_set_level(level);
		status = cmd_metrics(cfg);
		config_free(cfg);
		return status;
	}
	if (argc != 3) {
		usage(argc == 2 && strcmp(argv[1], "help") == 0 ? stdout : stderr);
		return argc == 2 && strcmp(argv[1], "help") == 0 ? 0 : 2;
	}
	if (config_load(&cfg) != MDM_OK)
		return 1;
	if (log_level_parse(config_get0(cfg, "log_level"), &level) == MDM_OK)
		log_set_level(level);
	if (strcmp(argv[1], "db") == 0)
		status = cmd_db(cfg, argv[2]);
	else if (strcmp(argv[1], "config") == 0)
		status = cmd_config(cfg, argv[2]);
	else
		usage(stderr);
	config_free(cfg);
	return status;
}
