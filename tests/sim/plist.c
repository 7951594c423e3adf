/*
 * applesim: Apple XML property lists with libxml2.  Reading walks the
 * document itself (a dict is <key> followed by its value); writing
 * produces the bytes CFPropertyList writes, so that the server sees what
 * a device sends, DOCTYPE and tabs included.
 */
#include "sim.h"

#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_B64_LINE 68 /* characters of base64 per <data> line, as in the captures */

xmlDocPtr sim_plist_parse(const void *p, size_t len, const char *what)
{
	xmlDocPtr doc;

	if (len > 0x7fffffff)
		sim_fail("%s: too large", what);
	/* No network, no entity substitution, no DTD loading, no recovery. */
	doc = xmlReadMemory(
	        p, (int)len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL)
		sim_fail("%s: not well-formed XML: %.200s", what, (const char *)p);
	if (xmlDocGetRootElement(doc) == NULL ||
	        strcmp((const char *)xmlDocGetRootElement(doc)->name, "plist") != 0)
		sim_fail("%s: the root element is not <plist>", what);
	return doc;
}

static xmlNodePtr sim_next_element(xmlNodePtr n)
{
	while (n != NULL && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

xmlNodePtr sim_plist_root(xmlDocPtr doc)
{
	return sim_next_element(xmlDocGetRootElement(doc)->children);
}

int sim_plist_is(xmlNodePtr v, const char *type)
{
	return v != NULL && strcmp((const char *)v->name, type) == 0;
}

xmlNodePtr sim_plist_get(xmlNodePtr dict, const char *key)
{
	xmlNodePtr n;

	if (!sim_plist_is(dict, "dict"))
		return NULL;
	for (n = sim_next_element(dict->children); n != NULL; n = sim_next_element(n->next)) {
		xmlNodePtr v = sim_next_element(n->next);
		xmlChar *k;
		int same;

		if (!sim_plist_is(n, "key") || v == NULL)
			return NULL;
		k = xmlNodeGetContent(n);
		same = k != NULL && strcmp((const char *)k, key) == 0;
		xmlFree(k);
		if (same)
			return v;
		n = v;
	}
	return NULL;
}

char *sim_plist_string(xmlNodePtr v)
{
	xmlChar *c;
	char *s;

	if (!sim_plist_is(v, "string"))
		return NULL;
	c = xmlNodeGetContent(v);
	s = sim_xstrdup(c != NULL ? (const char *)c : "");
	xmlFree(c);
	return s;
}

int sim_plist_bool(xmlNodePtr v, int dflt)
{
	if (sim_plist_is(v, "true"))
		return 1;
	if (sim_plist_is(v, "false"))
		return 0;
	return dflt;
}

long sim_plist_int(xmlNodePtr v, long dflt)
{
	xmlChar *c;
	char *end;
	long n;

	if (!sim_plist_is(v, "integer"))
		return dflt;
	c = xmlNodeGetContent(v);
	n = strtol(c != NULL ? (const char *)c : "", &end, 10);
	if (c == NULL || *end != '\0' || end == (char *)c)
		sim_fail("<integer>%s</integer> is not an integer", c ? (const char *)c : "");
	xmlFree(c);
	return n;
}

struct sim_buf sim_plist_data(xmlNodePtr v)
{
	struct sim_buf b = {NULL, 0};
	xmlChar *c;

	if (!sim_plist_is(v, "data"))
		return b;
	c = xmlNodeGetContent(v);
	b = sim_unb64(c != NULL ? (const char *)c : "");
	xmlFree(c);
	return b;
}

void sim_plist_set_string(xmlNodePtr dict, const char *key, const char *value)
{
	xmlNodePtr v = sim_plist_get(dict, key);
	xmlChar *esc;

	if (v != NULL) {
		if (!sim_plist_is(v, "string"))
			sim_fail("%s is not a <string>", key);
		esc = xmlEncodeSpecialChars(v->doc, (const xmlChar *)value);
		xmlNodeSetContent(v, esc);
		xmlFree(esc);
		return;
	}
	xmlNewTextChild(dict, NULL, (const xmlChar *)"key", (const xmlChar *)key);
	esc = xmlEncodeSpecialChars(dict->doc, (const xmlChar *)value);
	xmlNewChild(dict, NULL, (const xmlChar *)"string", esc);
	xmlFree(esc);
}

struct sim_buf sim_plist_dump(xmlDocPtr doc)
{
	struct sim_buf b = {NULL, 0};
	xmlChar *mem = NULL;
	int size = 0;

	xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
	if (mem == NULL || size <= 0)
		sim_fail("xmlDocDumpMemoryEnc failed");
	sim_buf_append(&b, mem, (size_t)size);
	xmlFree(mem);
	return b;
}

/* ---------------------------------------------------------------- writer */

static void sim_pw_raw(struct sim_pw *w, const char *s)
{
	sim_buf_append(&w->out, s, strlen(s));
}

static void sim_pw_indent(struct sim_pw *w)
{
	for (int i = 0; i < w->depth; i++)
		sim_pw_raw(w, "\t");
}

static void sim_pw_text(struct sim_pw *w, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '<')
			sim_pw_raw(w, "&lt;");
		else if (*s == '>')
			sim_pw_raw(w, "&gt;");
		else if (*s == '&')
			sim_pw_raw(w, "&amp;");
		else
			sim_buf_append(&w->out, s, 1);
	}
}

static void sim_pw_key(struct sim_pw *w, const char *key)
{
	sim_pw_indent(w);
	sim_pw_raw(w, "<key>");
	sim_pw_text(w, key);
	sim_pw_raw(w, "</key>\n");
}

void sim_pw_begin(struct sim_pw *w)
{
	w->out.p = NULL;
	w->out.len = 0;
	w->depth = 0;
	sim_pw_raw(w,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
	        "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
	        "<plist version=\"1.0\">\n<dict>\n");
	w->depth = 1;
}

void sim_pw_key_string(struct sim_pw *w, const char *key, const char *value)
{
	sim_pw_key(w, key);
	sim_pw_indent(w);
	sim_pw_raw(w, "<string>");
	sim_pw_text(w, value);
	sim_pw_raw(w, "</string>\n");
}

void sim_pw_key_bool(struct sim_pw *w, const char *key, int value)
{
	sim_pw_key(w, key);
	sim_pw_indent(w);
	sim_pw_raw(w, value ? "<true/>\n" : "<false/>\n");
}

void sim_pw_key_int(struct sim_pw *w, const char *key, long value)
{
	char n[32];

	snprintf(n, sizeof(n), "%ld", value);
	sim_pw_key(w, key);
	sim_pw_indent(w);
	sim_pw_raw(w, "<integer>");
	sim_pw_raw(w, n);
	sim_pw_raw(w, "</integer>\n");
}

/*
 * <data> as the captures show it (nanomdm TokenUpdate.1: on its own
 * lines, indented one deeper than the key, 68 characters a line).
 */
void sim_pw_key_data(struct sim_pw *w, const char *key, const uint8_t *p, size_t len)
{
	char *b64 = sim_b64(p, len);
	size_t n = strlen(b64), line = SIM_B64_LINE;

	sim_pw_key(w, key);
	sim_pw_indent(w);
	sim_pw_raw(w, "<data>\n");
	for (size_t i = 0; i < n; i += line) {
		sim_pw_indent(w);
		sim_buf_append(&w->out, b64 + i, n - i < line ? n - i : line);
		sim_pw_raw(w, "\n");
	}
	sim_pw_indent(w);
	sim_pw_raw(w, "</data>\n");
	free(b64);
}

void sim_pw_end(struct sim_pw *w)
{
	sim_pw_raw(w, "</dict>\n</plist>\n");
	w->depth = 0;
}
