/*
 * mdm-pushd: wakes devices over APNs when commands wait for them.
 *
 * LISTENs on mdm_command (NOTIFYed by mdm.enqueue_command and mdm.push)
 * and sweeps every push_sweep_seconds.  Each round claims up to push_batch
 * due pushes in one statement (mdm.push_claim: FOR UPDATE SKIP LOCKED,
 * with a lease), sends them over one HTTP/2 connection per topic
 * (lib/apns.c, push_concurrency streams at once) and records every answer
 * in one statement (mdm.push_record_batch; a success starts
 * push_min_interval for that enrollment).  Between rounds it sleeps until a notification, the next
 * sweep, or the moment a push held back by a backoff or the interval
 * comes due (mdm.push_next_due), whichever is first.  Any number may run
 * against one database.
 *
 *   mdm-pushd [--once] [--id NAME]
 *
 * --once: one round (until nothing is due), then exit 0; --id: the claim
 * owner's name (default host:pid).  SIGTERM/SIGINT: the round in flight
 * finishes and is recorded, then the daemon exits 0.
 */
#include "apns.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "pushq.h"
#include "x509.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PUSHD_MAX_TOPICS 64
#define PUSHD_TIMEOUT_MS 30000L
/* The shortest wait between rounds, and the longest for a due push left unclaimed. */
#define PUSHD_MIN_WAIT_MS    20
#define PUSHD_MAX_RECHECK_MS 1000

struct pushd_topic {
	char topic[160];
	char sha256[65]; /* the certificate the client was built with */
	apns *client;
	struct x509_st *cert;
	struct evp_pkey_st *key;
};

struct pushd {
	config *cfg;
	db *db;
	char id[256];
	struct apns_opts opts;
	int concurrency, batch, backoff_min, backoff_max, sweep_s, lease_s, min_interval;
	int rechecks; /* rounds in a row that found a push due and claimed nothing */
	struct pushd_topic topics[PUSHD_MAX_TOPICS];
	size_t ntopics;
};

static volatile sig_atomic_t pushd_stop;

static void pushd_on_signal(int sig)
{
	(void)sig;
	pushd_stop = 1;
}

static void pushd_topic_clear(struct pushd_topic *t)
{
	apns_free(t->client);
	x509_cert_free(t->cert);
	x509_key_free(t->key);
	memset(t, 0, sizeof(*t));
}

static double pushd_random(void)
{
	return (double)(random() % 1000000) / 1000000.0;
}

/*
 * The client for topic, (re)built when the certificate in mdm.push_cert
 * changed.  On failure *why names the problem for SQL and the log.
 */
static MDM_WUR mdm_err pushd_client(
        struct pushd *p, const char *topic, apns **out, const char **why)
{
	const char *params[] = {topic};
	struct pushd_topic *t = NULL, fresh;
	db_res *r = NULL;
	uint8_t *der = NULL;
	size_t derlen = 0;
	mdm_err rc;

	*out = NULL;
	*why = NULL;
	memset(&fresh, 0, sizeof(fresh));
	if ((rc = db_exec(p->db,
	             "SELECT c.der, p.key_uri, c.sha256, c.not_after < now() "
	             "FROM mdm.push_cert p JOIN mdm.certificate c ON c.id = p.certificate_id "
	             "WHERE p.topic = $1",
	             1, params, &r)) != MDM_OK) {
		*why = "database error";
		goto out;
	}
	if (db_res_rows(r) != 1) {
		log_error(
		        "push: no push certificate for topic %s: import it with `mdmctl push-cert "
		        "import`; its pushes wait",
		        topic);
		*why = "NoPushCertificate";
		rc = MDM_ERR_CONFIG;
		goto out;
	}
	if (strcmp(db_res_get0(r, 0, 3), "t") == 0) {
		log_error("push: the push certificate of topic %s has expired: renew it at "
		          "identity.apple.com and import it; its pushes wait",
		        topic);
		*why = "PushCertificateExpired";
		rc = MDM_ERR_CONFIG;
		goto out;
	}
	for (size_t i = 0; i < p->ntopics; i++)
		if (strcmp(p->topics[i].topic, topic) == 0)
			t = &p->topics[i];
	if (t != NULL && strcmp(t->sha256, db_res_get0(r, 0, 2)) == 0) {
		*out = t->client;
		goto out;
	}
	if (strlen(topic) >= sizeof(fresh.topic)) {
		*why = "TopicTooLong";
		rc = MDM_ERR_CONFIG;
		goto out;
	}
	if ((rc = db_res_get_bytea(r, 0, 0, &der, &derlen)) != MDM_OK ||
	        (rc = x509_cert_from_der(der, derlen, &fresh.cert)) != MDM_OK) {
		log_error("push: the push certificate of topic %s in mdm.certificate is unreadable",
		        topic);
		*why = "PushCertificateUnreadable";
		goto out;
	}
	if ((rc = x509_key_load(db_res_get0(r, 0, 1), &fresh.key)) != MDM_OK) {
		/* x509_key_load said why; the URI may hold a PIN, so it is not repeated. */
		log_error("push: the private key of topic %s's push certificate cannot be loaded",
		        topic);
		*why = rc == MDM_ERR_UNSUPPORTED ? "PushKeyUnsupported" : "PushKeyUnusable";
		goto out;
	}
	if (!x509_key_matches_cert(fresh.key, fresh.cert)) {
		log_error("push: the key at topic %s's key_uri does not match its push certificate",
		        topic);
		*why = "PushKeyMismatch";
		rc = MDM_ERR_CONFIG;
		goto out;
	}
	if ((rc = apns_new(&p->opts, topic, fresh.cert, fresh.key, &fresh.client)) != MDM_OK) {
		*why = "ApnsClientSetup";
		goto out;
	}
	memcpy(fresh.topic, topic, strlen(topic) + 1);
	snprintf(fresh.sha256, sizeof(fresh.sha256), "%s", db_res_get0(r, 0, 2));
	if (t == NULL) {
		if (p->ntopics >= PUSHD_MAX_TOPICS) {
			log_error("push: more than %d topics at once", PUSHD_MAX_TOPICS);
			*why = "TooManyTopics";
			rc = MDM_ERR_LIMIT;
			goto out;
		}
		t = &p->topics[p->ntopics++];
	} else {
		log_info("push: topic %s has a new certificate: reconnecting", topic);
		pushd_topic_clear(t);
	}
	*t = fresh;
	memset(&fresh, 0, sizeof(fresh));
	*out = t->client;
out:
	pushd_topic_clear(&fresh);
	free(der);
	db_res_free(r);
	return rc;
}

/*
 * What one answer means (the result to record) and what the operator
 * should know of it, logged (never token or magic).  A success is logged
 * at debug: at thousands a second a line each would be the daemon's main
 * work; pushd_send_topic logs each batch's totals.
 */
static void pushd_outcome(struct pushd *p, const struct pushq_item *it, int status,
        const char *apns_id, const char *reason, struct pushq_result *r)
{
	enum pushq_action act = pushq_classify(status, reason);
	double retry = 0;
	const char *who = it->udid ? it->udid : "?";

	switch (act) {
	case PUSHQ_SENT:
		retry = p->min_interval;
		log_debug("push: sent to enrollment %lld (%s) apns-id %s", it->enrollment_id, who,
		        apns_id && apns_id[0] ? apns_id : "-");
		break;
	case PUSHQ_TOKEN_INVALID:
		log_warn("push: enrollment %lld (%s): %d %s: token marked invalid until its next "
		         "TokenUpdate",
		        it->enrollment_id, who, status, reason && reason[0] ? reason : "-");
		break;
	case PUSHQ_CERT:
		retry = pushq_backoff(0, p->backoff_max, p->backoff_max, pushd_random());
		log_error("push: APNs refused topic %s's certificate (403 %s): check the push "
		          "certificate; retrying in %.0f s",
		        it->topic, reason && reason[0] ? reason : "-", retry);
		break;
	case PUSHQ_REFUSED:
		retry = pushq_backoff(0, p->backoff_max, p->backoff_max, pushd_random());
		log_error("push: APNs refused the push to enrollment %lld (%s): %d %s; retrying in "
		          "%.0f s",
		        it->enrollment_id, who, status, reason && reason[0] ? reason : "-", retry);
		break;
	case PUSHQ_RETRY:
	default:
		retry = pushq_backoff(it->failures, p->backoff_min, p->backoff_max, pushd_random());
		log_warn("push: enrollment %lld (%s): %d %s; retry %d in %.1f s", it->enrollment_id,
		        who, status, reason && reason[0] ? reason : "-", it->failures + 1, retry);
		break;
	}
	r->it = it;
	r->status = status;
	r->apns_id = apns_id && apns_id[0] ? apns_id : NULL;
	r->reason = reason && reason[0] ? reason : NULL;
	r->retry_s = retry;
	r->token_invalid = act == PUSHQ_TOKEN_INVALID;
}

/*
 * Sends the claimed items of one topic (idx lists them) with push[], one
 * slot per claimed item; their results go to res[] by the same index.
 */
static void pushd_send_topic(struct pushd *p, struct pushq_batch *b, const size_t *idx, size_t n,
        struct apns_push *push, struct pushq_result *res)
{
	const char *topic = b->items[idx[0]].topic;
	const char *why = NULL, *cert_reason = NULL;
	apns *client = NULL;
	size_t ok = 0;
	long connects;
	int cert_refused = 0;
	mdm_err rc;

	if ((rc = pushd_client(p, topic, &client, &why)) != MDM_OK) {
		double retry;
		if (rc == MDM_ERR_DB || rc == MDM_ERR_DB_CONN)
			return; /* not recorded: the claims expire and are taken up again */
		retry = pushq_backoff(0, p->backoff_max, p->backoff_max, pushd_random());
		err_ignore(pushq_topic_record(p->db, topic, 0, why ? why : "setup failed"));
		for (size_t i = 0; i < n; i++)
			res[idx[i]] =
			        (struct pushq_result){&b->items[idx[i]], 0, NULL, why, retry, 0};
		return;
	}
	/* Packed to the front of push[] for apns_send; spread back to idx order below. */
	for (size_t i = 0; i < n; i++) {
		push[i].token_hex = b->items[idx[i]].token_hex;
		push[i].magic = b->items[idx[i]].magic;
	}
	connects = apns_connections(client);
	if (apns_send(client, push, n) != MDM_OK)
		log_error("push: sending to topic %s failed locally", topic);
	for (size_t i = 0; i < n; i++) {
		pushd_outcome(p, &b->items[idx[i]], push[i].status, push[i].apns_id, push[i].reason,
		        &res[idx[i]]);
		ok += push[i].status == 200;
		if (push[i].status == 403) {
			cert_refused = 1;
			cert_reason = push[i].reason;
		}
	}
	log_info("push: topic %s: %zu pushes, %zu answered 200, %zu not, over %ld new "
	         "connection(s)",
	        topic, n, ok, n - ok, apns_connections(client) - connects);
	if (cert_refused)
		err_ignore(pushq_topic_record(
		        p->db, topic, 403, cert_reason[0] ? cert_reason : "403"));
	else if (ok > 0)
		err_ignore(pushq_topic_record(p->db, topic, 200, NULL));
}

/* Refuses items that cannot be pushed at all; 1 if the item may be sent, else *r is set. */
static int pushd_check_item(const struct pushq_item *it, struct pushq_result *r)
{
	const char *why = NULL;

	if (it->token_hex == NULL)
		why = "NoPushToken";
	else if (!apns_token_valid(it->token_hex))
		why = "InvalidPushToken";
	else if (it->magic == NULL || !apns_magic_valid(it->magic))
		why = "InvalidPushMagic";
	else if (it->topic == NULL || it->topic[0] == '\0')
		why = "NoTopic";
	if (why == NULL)
		return 1;
	/* Apple's 400/410 treatment: nothing until the device's next TokenUpdate. */
	log_warn("push: enrollment %lld (%s) cannot be pushed: %s; skipped until its next "
	         "TokenUpdate",
	        it->enrollment_id, it->udid ? it->udid : "?", why);
	*r = (struct pushq_result){it, 0, NULL, why, 0, 1};
	return 0;
}

/*
 * How long to wait for a notification: until the next push held back by
 * its backoff or push_min_interval comes due (no NOTIFY announces that),
 * at most push_sweep_seconds.  A push that is due but was not claimed
 * (another daemon is claiming it this moment, or an open transaction
 * holds its row) is looked at again after PUSHD_MIN_WAIT_MS, doubled per
 * such round up to PUSHD_MAX_RECHECK_MS: no spinning on a locked row.
 */
static int pushd_wait_ms(struct pushd *p, size_t claimed)
{
	double due = -1;
	long ms = (long)p->sweep_s * 1000, floor_ms;

	if (pushq_next_due(p->db, &due) != MDM_OK || due < 0) {
		p->rechecks = 0;
		return (int)ms;
	}
	if (due * 1000 + 1 < (double)ms)
		ms = (long)(due * 1000) + 1; /* just after it, not just before */
	if (due * 1000 < PUSHD_MIN_WAIT_MS && claimed == 0) {
		if (p->rechecks < 16)
			p->rechecks++;
	} else {
		p->rechecks = 0;
	}
	floor_ms = PUSHD_MIN_WAIT_MS;
	for (int i = 1; i < p->rechecks && floor_ms < PUSHD_MAX_RECHECK_MS; i++)
		floor_ms *= 2;
	if (floor_ms > PUSHD_MAX_RECHECK_MS)
		floor_ms = PUSHD_MAX_RECHECK_MS;
	if (ms < floor_ms)
		ms = floor_ms;
	return (int)ms;
}

/*
 * One claim (up to push_batch), its sends, and one statement recording
 * every outcome; *claimed is how many were claimed.
 */
static MDM_WUR mdm_err pushd_round(struct pushd *p, size_t *claimed)
{
	struct pushq_batch b;
	struct pushq_result *res = NULL;
	struct apns_push *push = NULL;
	size_t *idx = NULL, *group = NULL;
	size_t nidx = 0, nres = 0, used = 0;
	mdm_err rc;

	*claimed = 0;
	if ((rc = pushq_claim(p->db, p->id, p->batch, p->lease_s, &b)) != MDM_OK)
		return rc;
	*claimed = b.n;
	if (b.n == 0)
		goto out;
	if ((idx = calloc(b.n, sizeof(*idx))) == NULL ||
	        (group = calloc(b.n, sizeof(*group))) == NULL ||
	        (res = calloc(b.n, sizeof(*res))) == NULL ||
	        (push = calloc(b.n, sizeof(*push))) == NULL) {
		log_error("push: out of memory for %zu pushes; their claims expire", b.n);
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < b.n; i++)
		if (pushd_check_item(&b.items[i], &res[i]))
			idx[nidx++] = i;
	/* One batch per topic, in the order topics first appear (idx entries used: SIZE_MAX). */
	for (size_t i = 0; i < nidx; i++) {
		size_t ng = 0;
		const char *topic;
		if (idx[i] == SIZE_MAX)
			continue;
		topic = b.items[idx[i]].topic;
		for (size_t j = i; j < nidx; j++) {
			if (idx[j] != SIZE_MAX && strcmp(b.items[idx[j]].topic, topic) == 0) {
				group[ng++] = idx[j];
				idx[j] = SIZE_MAX;
			}
		}
		pushd_send_topic(p, &b, group, ng, push + used, res);
		used += ng;
	}
	/* Items without a result (a database error setting up a topic) are left to expire. */
	for (size_t i = 0; i < b.n; i++)
		if (res[i].it != NULL)
			res[nres++] = res[i];
	if ((rc = pushq_record_batch(p->db, p->id, res, nres)) != MDM_OK && rc != MDM_ERR_NOT_FOUND)
		log_error("push: could not record the outcomes of %zu pushes; their claims expire "
		          "in %d s",
		        nres, p->lease_s);
	if (rc == MDM_ERR_NOT_FOUND)
		rc = MDM_OK;
out:
	free(idx);
	free(group);
	free(res);
	free(push);
	pushq_batch_free(&b);
	return rc;
}

static MDM_WUR mdm_err pushd_config(struct pushd *p)
{
	mdm_err rc;

	if ((rc = config_get_int(p->cfg, "push_concurrency", 1, 1000, &p->concurrency)) != MDM_OK ||
	        (rc = config_get_int(p->cfg, "push_batch", 1, 10000, &p->batch)) != MDM_OK ||
	        (rc = config_get_int(p->cfg, "push_backoff_min", 1, 86400, &p->backoff_min)) !=
	                MDM_OK ||
	        (rc = config_get_int(p->cfg, "push_backoff_max", 1, 86400, &p->backoff_max)) !=
	                MDM_OK ||
	        (rc = config_get_int(p->cfg, "push_sweep_seconds", 1, 3600, &p->sweep_s)) !=
	                MDM_OK ||
	        (rc = config_get_int(p->cfg, "push_lease_seconds", 5, 86400, &p->lease_s)) !=
	                MDM_OK ||
	        (rc = config_get_int(p->cfg, "push_min_interval", 0, 3600, &p->min_interval)) !=
	                MDM_OK)
		return rc;
	if (p->backoff_max < p->backoff_min) {
		log_error("config: push_backoff_max must be at least push_backoff_min");
		return MDM_ERR_CONFIG;
	}
	p->opts.url = config_get0(p->cfg, "apns_url");
	p->opts.ca_file = config_get0(p->cfg, "apns_ca_file");
	p->opts.concurrency = p->concurrency;
	p->opts.timeout_ms = PUSHD_TIMEOUT_MS;
	return MDM_OK;
}

static void pushd_usage(void)
{
	fprintf(stderr,
	        "usage: mdm-pushd [--once] [--id NAME]\n"
	        "  configuration: MDM_CONFIG file and MDM_* environment "
	        "(docs/CONFIG.md: db, apns_url, apns_ca_file, push_*)\n");
}

int main(int argc, char **argv)
{
	struct pushd p;
	struct sigaction sa;
	enum log_level level;
	int once = 0, listening = 0, status = 1;
	char host[128];

	memset(&p, 0, sizeof(p));
	log_init("mdm-pushd", MDM_LOG_INFO);
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(p.id, sizeof(p.id), "%s:%ld", host, (long)getpid());
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--once") == 0) {
			once = 1;
		} else if (strcmp(argv[i], "--id") == 0 && i + 1 < argc && argv[i + 1][0] != '\0' &&
		        strlen(argv[i + 1]) < sizeof(p.id)) {
			snprintf(p.id, sizeof(p.id), "%s", argv[++i]);
		} else {
			pushd_usage();
			return 2;
		}
	}
	if (config_load(&p.cfg) != MDM_OK)
		return 1;
	if (log_level_parse(config_get0(p.cfg, "log_level"), &level) == MDM_OK)
		log_set_level(level);
	if (pushd_config(&p) != MDM_OK || apns_global_init() != MDM_OK)
		goto out;
	if (db_new(config_get0(p.cfg, "db"), "mdm-pushd", &p.db) != MDM_OK)
		goto out;
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = pushd_on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal ends the wait for notifications at once. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	log_info("push: mdm-pushd %s started (apns_url %s, %d streams at once, %d a round, sweep "
	         "%d s, min interval %d s)",
	        p.id, p.opts.url ? p.opts.url : APNS_DEFAULT_URL, p.concurrency, p.batch, p.sweep_s,
	        p.min_interval);
	while (!pushd_stop) {
		size_t claimed = 0;
		int got = 0;
		mdm_err rc;

		if (!once && !listening)
			listening = db_listen(p.db, "mdm_command") == MDM_OK;
		/* Drain: claim again while full rounds come back. */
		do {
			if ((rc = pushd_round(&p, &claimed)) != MDM_OK)
				log_warn("push: round failed (%s)", err_str(rc));
		} while (rc == MDM_OK && claimed == (size_t)p.batch && !pushd_stop);
		if (once)
			break;
		if (!listening) {
			sleep(1);
			continue;
		}
		rc = db_wait_notify(p.db, pushd_wait_ms(&p, claimed), &got);
		if (rc == MDM_ERR_DB_CONN)
			sleep(1); /* the next round reconnects and LISTENs again */
	}
	status = 0;
	{
		struct rusage ru;
		long kib = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
		log_info("push: mdm-pushd %s stopping (max RSS %ld KiB)", p.id, kib);
	}
out:
	for (size_t i = 0; i < p.ntopics; i++)
		pushd_topic_clear(&p.topics[i]);
	db_free(p.db);
	config_free(p.cfg);
	apns_global_cleanup();
	return status;
}
