/*
 * mdm-eventd: delivers check-in and command-result events to a webhook.
 *
 * The events are rows of mdm.event_outbox, written by triggers in the
 * transaction of each check-in and command result (sql/023_events.sql).
 * The daemon turns their recording on when it starts (mdm.events_enable),
 * LISTENs on mdm_event, and each round claims up to EVENTD_BATCH due
 * events (mdm.event_claim: FOR UPDATE SKIP LOCKED, with a lease) and
 * POSTs them one by one, in id order, over one kept connection
 * (lib/apns_http.c), each with its X-MDM-Signature (HMAC-SHA256 of the
 * body under the secret in webhook_secret_file).  A 2xx answer is
 * recorded as delivered at once; no answer, 408, 429 or 5xx back the event
 * off (exponentially, with jitter) and give the rest of the round back
 * to wait as long, since the receiver is down, and nothing more is
 * claimed until then (the probe's backoff grows with the outage); any
 * other status backs that event off alone.  Nothing is ever dropped: delivery is at least
 * once (a crash between the receiver's 2xx and the record sends that
 * event again after the lease), and receivers deduplicate by event_id.
 * Delivered events are deleted after webhook_keep_days.
 *
 *   mdm-eventd [--once] [--id NAME]
 *
 * --once: rounds until nothing is due now (or the receiver is down), then
 * exit 0; --id: the claim owner's name (default host:pid).
 * SIGTERM/SIGINT: the POST in flight finishes and is recorded, the rest
 * of the round is given back, then the daemon exits 0.
 */
#include "apns.h"
#include "config.h"
#include "db.h"
#include "eventq.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Events one round claims; its lease covers them all at webhook_timeout each. */
#define EVENTD_BATCH 10
/* The longest sleep between rounds (besides NOTIFY and the next due event). */
#define EVENTD_SWEEP_MS 30000
/* Delivered events deleted a round, and how often the prune runs. */
#define EVENTD_PRUNE_MAX 1000
#define EVENTD_PRUNE_S   60

struct eventd {
	config *cfg;
	db *db;
	apns_http *http;
	char id[256];
	char where[160]; /* scheme://host of webhook_url, for logs: no path, query or user */
	uint8_t *secret;
	size_t secretlen;
	int timeout_s, backoff_min, backoff_max, keep_days, lease_s;
	int enabled;
	time_t last_prune;
	/*
	 * The receiver's state as this daemon saw it last: consecutive rounds
	 * it was unavailable, and until when nothing is claimed (CLOCK_MONOTONIC
	 * seconds), so that events arriving during an outage wait for the next
	 * probe instead of each costing an attempt of its own.
	 */
	int down_rounds;
	double down_until;
};

static volatile sig_atomic_t eventd_stop;

static void eventd_on_signal(int sig)
{
	(void)sig;
	eventd_stop = 1;
}

static double eventd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double eventd_random(void)
{
	return (double)(random() % 1000000) / 1000000.0;
}

/* scheme://host[:port] of url without any user:password@: what logs may show. */
static void eventd_where(const char *url, char *out, size_t cap)
{
	const char *host = strstr(url, "://"), *end, *at;
	size_t n;

	host = host != NULL ? host + 3 : url;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	if (at != NULL)
		host = at + 1;
	n = (size_t)(strstr(url, "://") != NULL ? strstr(url, "://") - url + 3 : 0);
	snprintf(out, cap, "%.*s%.*s", (int)n, url, (int)(end - host), host);
}

/*
 * One POST: the signature and the event's headers, the answer, the
 * record.  *stop_round is set when the receiver is unavailable, with
 * *retry_s the wait the rest of the round gets.
 */
static void eventd_deliver(
        struct eventd *e, const struct eventq_item *it, int *stop_round, double *retry_s)
{
	char sig[EVENTQ_SIG_LEN + 1], h_sig[EVENTQ_SIG_LEN + 32], h_id[64], h_ts[64], h_try[64];
	const char *headers[4] = {h_sig, h_id, h_ts, h_try};
	char why[512];
	int status = 0, changed = 0;
	double retry = 0;
	enum eventq_action act;
	mdm_err rc;

	*stop_round = 0;
	*retry_s = 0;
	if ((rc = eventq_sign(e->secret, e->secretlen, it->payload, it->len, sig)) != MDM_OK) {
		snprintf(why, sizeof(why), "local: cannot sign (%s)", err_str(rc));
		status = 0;
	} else {
		snprintf(h_sig, sizeof(h_sig), "X-MDM-Signature: %s", sig);
		snprintf(h_id, sizeof(h_id), "X-MDM-Event-Id: %lld", it->id);
		snprintf(h_ts, sizeof(h_ts), "X-MDM-Timestamp: %lld", (long long)time(NULL));
		snprintf(h_try, sizeof(h_try), "X-MDM-Delivery-Attempt: %d", it->attempts + 1);
		if ((rc = apns_http_post(e->http, headers, 4, it->payload, it->len, &status, why,
		             sizeof(why))) != MDM_OK) {
			snprintf(why, sizeof(why), "local: the POST could not be made (%s)",
			        err_str(rc));
			status = 0;
		}
	}
	act = eventq_classify(status);
	switch (act) {
	case EVENTQ_DELIVERED:
		e->down_rounds = 0;
		log_debug("events: event %lld delivered to %s (%d, attempt %d)", it->id, e->where,
		        status, it->attempts + 1);
		break;
	case EVENTQ_UNAVAILABLE:
		/* The event's own failures or the receiver's, whichever are more. */
		retry = eventq_backoff(
		        it->attempts > e->down_rounds ? it->attempts : e->down_rounds,
		        e->backoff_min, e->backoff_max, eventd_random());
		e->down_rounds++;
		e->down_until = eventd_now() + retry;
		log_warn("events: event %lld to %s: %s; attempt %d failed, retry in %.1f s "
		         "(the rest of the round waits as long)",
		        it->id, e->where, why, it->attempts + 1, retry);
		*stop_round = 1;
		*retry_s = retry;
		break;
	case EVENTQ_REJECTED:
	default:
		e->down_rounds = 0; /* it answered */
		retry = eventq_backoff(
		        it->attempts, e->backoff_min, e->backoff_max, eventd_random());
		log_error("events: event %lld refused by %s: %s; attempt %d, retry in %.1f s",
		        it->id, e->where, why, it->attempts + 1, retry);
		break;
	}
	if ((rc = eventq_record(e->db, it->id, e->id, status, act == EVENTQ_DELIVERED ? NULL : why,
	             retry, &changed)) != MDM_OK)
		log_error("events: could not record the outcome of event %lld (%s): it is sent "
		          "again after its lease (%d s)",
		        it->id, err_str(rc), e->lease_s);
	else if (!changed)
		log_warn("events: event %lld was delivered or claimed by another daemon meanwhile "
		         "(this one's lease of %d s ran out)",
		        it->id, e->lease_s);
}

/* One claim and its POSTs; *claimed is how many were claimed. */
static MDM_WUR mdm_err eventd_round(struct eventd *e, size_t *claimed, int *unavailable)
{
	struct eventq_batch b;
	long long rest[EVENTD_BATCH];
	size_t nrest = 0, ok = 0, i;
	double retry = 0;
	int stop = 0;
	mdm_err rc;

	*claimed = 0;
	*unavailable = 0;
	if ((rc = eventq_claim(e->db, e->id, EVENTD_BATCH, e->lease_s, &b)) != MDM_OK)
		return rc;
	*claimed = b.n;
	for (i = 0; i < b.n && !stop && !eventd_stop; i++) {
		eventd_deliver(e, &b.items[i], &stop, &retry);
		ok += !stop;
	}
	/* The rest of the round, not attempted: due again with the failed one, or now. */
	for (; i < b.n && nrest < EVENTD_BATCH; i++)
		rest[nrest++] = b.items[i].id;
	if (nrest > 0 &&
	        (rc = eventq_release(e->db, rest, nrest, e->id, stop ? retry : 0)) != MDM_OK)
		log_warn("events: could not give back %zu claims (%s): they are due after their "
		         "lease (%d s)",
		        nrest, err_str(rc), e->lease_s);
	if (b.n > 0)
		log_info("events: %zu claimed, %zu posted to %s%s", b.n, ok, e->where,
		        stop ? ", then the receiver was unavailable" : "");
	*unavailable = stop;
	eventq_batch_free(&b);
	return MDM_OK;
}

static void eventd_prune(struct eventd *e)
{
	long n = 0;
	time_t now = time(NULL);

	if (now - e->last_prune < EVENTD_PRUNE_S)
		return;
	e->last_prune = now;
	if (eventq_prune(e->db, e->keep_days, EVENTD_PRUNE_MAX, &n) != MDM_OK)
		log_warn("events: could not delete delivered events older than %d days",
		        e->keep_days);
	else if (n > 0)
		log_info("events: deleted %ld events delivered more than %d days ago", n,
		        e->keep_days);
}

/* How long to wait for a notification: until the next event is due, at most the sweep. */
static int eventd_wait_ms(struct eventd *e)
{
	double due = -1;
	long ms = EVENTD_SWEEP_MS;

	if (eventq_next_due(e->db, &due) != MDM_OK || due < 0)
		return (int)ms;
	if (due * 1000 + 1 < (double)ms)
		ms = (long)(due * 1000) + 1;
	/* An event due now but not claimed is locked by another daemon: look again shortly. */
	if (ms < 50)
		ms = 50;
	return (int)ms;
}

static MDM_WUR mdm_err eventd_config(struct eventd *e)
{
	struct apns_http_opts o;
	const char *url = config_get0(e->cfg, "webhook_url");
	mdm_err rc;

	if ((rc = config_get_int(e->cfg, "webhook_timeout", 1, 300, &e->timeout_s)) != MDM_OK ||
	        (rc = config_get_int(e->cfg, "webhook_backoff_min", 1, 86400, &e->backoff_min)) !=
	                MDM_OK ||
	        (rc = config_get_int(e->cfg, "webhook_backoff_max", 1, 86400, &e->backoff_max)) !=
	                MDM_OK ||
	        (rc = config_get_int(e->cfg, "webhook_keep_days", 0, 3650, &e->keep_days)) !=
	                MDM_OK)
		return rc;
	if (e->backoff_max < e->backoff_min) {
		log_error("config: webhook_backoff_max must be at least webhook_backoff_min");
		return MDM_ERR_CONFIG;
	}
	if (url == NULL || url[0] == '\0') {
		log_error("config: webhook_url is required: where mdm-eventd POSTs events");
		return MDM_ERR_CONFIG;
	}
	if (!apns_http_url_valid(url)) {
		log_error("config: webhook_url must be http:// or https:// and a host, printable "
		          "ASCII without spaces, at most %d characters",
		        APNS_HTTP_MAX_URL);
		return MDM_ERR_CONFIG;
	}
	eventd_where(url, e->where, sizeof(e->where));
	if ((rc = eventq_secret_load(config_get0(e->cfg, "webhook_secret_file"), &e->secret,
	             &e->secretlen)) != MDM_OK)
		return rc;
	/* Every event of a round may take the whole timeout; then a margin. */
	e->lease_s = EVENTD_BATCH * e->timeout_s + 30;
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.ca_file = config_get0(e->cfg, "webhook_ca_file");
	o.timeout_ms = (long)e->timeout_s * 1000;
	o.connect_timeout_ms = o.timeout_ms;
	return apns_http_new(&o, &e->http);
}

static void eventd_usage(void)
{
	fprintf(stderr,
	        "usage: mdm-eventd [--once] [--id NAME]\n"
	        "  configuration: MDM_CONFIG file and MDM_* environment "
	        "(docs/CONFIG.md: db, webhook_*)\n");
}

int main(int argc, char **argv)
{
	struct eventd e;
	struct sigaction sa;
	enum log_level level;
	int once = 0, listening = 0, status = 1;
	char host[128];

	memset(&e, 0, sizeof(e));
	log_init("mdm-eventd", MDM_LOG_INFO);
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(e.id, sizeof(e.id), "%s:%ld", host, (long)getpid());
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--once") == 0) {
			once = 1;
		} else if (strcmp(argv[i], "--id") == 0 && i + 1 < argc && argv[i + 1][0] != '\0' &&
		        strlen(argv[i + 1]) < sizeof(e.id)) {
			snprintf(e.id, sizeof(e.id), "%s", argv[++i]);
		} else {
			eventd_usage();
			return 2;
		}
	}
	if (config_load(&e.cfg) != MDM_OK)
		return 1;
	if (log_level_parse(config_get0(e.cfg, "log_level"), &level) == MDM_OK)
		log_set_level(level);
	if (apns_http_global_init() != MDM_OK)
		goto out_config;
	if (eventd_config(&e) != MDM_OK)
		goto out;
	if (db_new(config_get0(e.cfg, "db"), "mdm-eventd", &e.db) != MDM_OK)
		goto out;
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = eventd_on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal ends the wait for notifications at once. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	log_info("events: mdm-eventd %s started (webhook %s, timeout %d s, backoff %d..%d s, "
	         "delivered events kept %d days)",
	        e.id, e.where, e.timeout_s, e.backoff_min, e.backoff_max, e.keep_days);
	while (!eventd_stop) {
		size_t claimed = 0;
		int got = 0, unavailable = 0;
		mdm_err rc;

		if (!e.enabled) {
			if (eventq_enable(e.db, 1) == MDM_OK) {
				e.enabled = 1;
				log_info("events: recording of check-in and command-result events "
				         "is "
				         "on (mdm.event_config)");
			} else {
				log_warn("events: cannot turn event recording on yet; retrying");
			}
		}
		if (!once && !listening)
			listening = db_listen(e.db, "mdm_event") == MDM_OK;
		/* The receiver is down: nothing is claimed before the next probe. */
		if (!once && eventd_now() < e.down_until) {
			double ms = (e.down_until - eventd_now()) * 1000 + 1;
			if (!listening) {
				usleep(ms < 1000 ? (useconds_t)(ms * 1000) : 1000000);
				continue;
			}
			rc = db_wait_notify(
			        e.db, ms < EVENTD_SWEEP_MS ? (int)ms : EVENTD_SWEEP_MS, &got);
			if (rc == MDM_ERR_DB_CONN)
				sleep(1);
			continue;
		}
		/* Drain: claim again while full rounds come back and the receiver takes them. */
		do {
			if ((rc = eventd_round(&e, &claimed, &unavailable)) != MDM_OK)
				log_warn("events: round failed (%s)", err_str(rc));
		} while (rc == MDM_OK && claimed == EVENTD_BATCH && !unavailable && !eventd_stop);
		eventd_prune(&e);
		if (once)
			break;
		if (!listening) {
			sleep(1);
			continue;
		}
		rc = db_wait_notify(e.db, eventd_wait_ms(&e), &got);
		if (rc == MDM_ERR_DB_CONN)
			sleep(1); /* the next round reconnects and LISTENs again */
	}
	status = 0;
	log_info("events: mdm-eventd %s stopping", e.id);
out:
	apns_http_free(e.http);
	db_free(e.db);
	eventq_secret_free(e.secret, e.secretlen);
	apns_http_global_cleanup();
out_config:
	config_free(e.cfg);
	return status;
}
