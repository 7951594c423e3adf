# One Makefile for the whole tree.  See README.md: `make demo`, `make test`.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
SAN     ?= 0
FUZZ    ?= 0
CC      ?= cc

PKGS      := fcgi openssl libxml-2.0 libpq libcurl libnghttp2 libcbor
TEST_PKGS := check

# pkg-config is asked lazily so that `make clean` works before deps exist.
PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS    = $(shell pkg-config --libs $(PKGS))
TEST_CFLAGS = $(shell pkg-config --cflags $(TEST_PKGS))
TEST_LIBS   = $(shell pkg-config --libs $(TEST_PKGS))

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wformat-security \
	-Wstrict-prototypes -Wmissing-prototypes -Wvla -Wpointer-arith \
	-Wundef -Wimplicit-fallthrough
STD  := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE

ifeq ($(FUZZ),1)
# libmdm for the libFuzzer targets (make fuzz): the same objects, clang,
# coverage and sanitizers; scripts/fuzz.sh links each fuzz/NAME_fuzz.c to it.
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=all
HARDEN   :=
LDHARDEN := -fsanitize=fuzzer,address,undefined
else ifeq ($(SAN),1)
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
HARDEN   :=
LDHARDEN := -fsanitize=address,undefined
else
OPT      := -O2 -g
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fstack-clash-protection \
	-fPIE -fcf-protection
LDHARDEN := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack
endif

# Where `make install` puts data files (the defaults of config ota_trust_file and
# acme_attest_root_file).
DATADIR ?= $(PREFIX)/share/mdm

CFLAGS_ALL  = $(STD) $(WARN) $(OPT) $(HARDEN) -iquote lib -DMDM_DATADIR='"$(DATADIR)"' \
	$(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = $(LDHARDEN) $(LDFLAGS)

LIB_SRC   := $(wildcard lib/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/lib/migrations.o
LIBMDM    := $(BUILD)/libmdm.a
PROGRAMS  := scep enroll checkin server acme
FCGI_BINS := $(PROGRAMS:%=$(BUILD)/cgi-bin/%.fcgi)
BIN_BINS  := $(BUILD)/bin/mdmctl $(BUILD)/bin/mdm-pushd $(BUILD)/bin/mdm-eventd
SUPPORT_SRC := $(wildcard tests/support/*.c)
SUPPORT_LIB := $(BUILD)/tests/libsupport.a
UNIT_SRC  := $(wildcard tests/unit/*.c)
UNIT_BIN  := $(BUILD)/tests/check_unit
E2E_SRC   := $(wildcard tests/e2e/*.c)
E2E_BIN   := $(BUILD)/tests/check_e2e
APNS_BIN  := $(BUILD)/tests/apns_standin
ATTEST_BIN := $(BUILD)/tests/attest_standin
SIM_SRC   := $(wildcard tests/sim/*.c)
SIM_BIN   := $(BUILD)/tests/applesim
SQL_FILES := $(sort $(wildcard sql/[0-9]*.sql))

.PHONY: all lib programs tests test unit san demo demo-stop install clean \
	format format-check lint fuzz deps bench deb
.DELETE_ON_ERROR:

all: programs tests

lib: $(LIBMDM)
programs: $(FCGI_BINS) $(BIN_BINS)
tests: $(UNIT_BIN) $(E2E_BIN) $(APNS_BIN) $(ATTEST_BIN) $(SIM_BIN)

$(BUILD)/lib/%.o: lib/%.c $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

# The migrations are compiled into libmdm, so mdmctl needs no path to sql/.
$(BUILD)/lib/migrations.c: $(SQL_FILES) scripts/embed-sql.sh
	@mkdir -p $(@D)
	sh scripts/embed-sql.sh $(SQL_FILES) > $@

$(BUILD)/lib/migrations.o: $(BUILD)/lib/migrations.c lib/migrate.h
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(LIBMDM): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/cgi-bin/%.fcgi: cgi-bin/%.c $(LIBMDM)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIBMDM) $(LDFLAGS_ALL) $(PKG_LIBS)

$(BUILD)/bin/%: bin/%.c $(LIBMDM)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIBMDM) $(LDFLAGS_ALL) $(PKG_LIBS)

# The test helpers (tests/support) that the unit, e2e and bench programs
# share: an archive, so that each takes only the objects it uses.
$(BUILD)/tests/support/%.o: tests/support/%.c $(wildcard tests/support/*.h) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(TEST_CFLAGS) -c -o $@ $<

$(SUPPORT_LIB): $(SUPPORT_SRC:%.c=$(BUILD)/%.o)
	rm -f $@
	ar rcs $@ $^

$(UNIT_BIN): $(UNIT_SRC) $(wildcard tests/unit/*.h) $(SUPPORT_LIB) $(LIBMDM)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(TEST_CFLAGS) -iquote tests/unit -iquote tests/support -o $@ \
		$(UNIT_SRC) $(SUPPORT_LIB) $(LIBMDM) $(LDFLAGS_ALL) $(PKG_LIBS) $(TEST_LIBS)

$(E2E_BIN): $(E2E_SRC) $(wildcard tests/e2e/*.h) $(SUPPORT_LIB) $(LIBMDM)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(TEST_CFLAGS) -iquote tests/support -o $@ $(E2E_SRC) \
		$(SUPPORT_LIB) $(LIBMDM) $(LDFLAGS_ALL) $(PKG_LIBS) $(TEST_LIBS)

# The APNs stand-in (tests/apns): a FastCGI program behind Apache.
$(APNS_BIN): tests/apns/apns_standin.c $(LIBMDM)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIBMDM) $(LDFLAGS_ALL) $(PKG_LIBS)

# The stand-in for Apple's attestation service (tests/attest): the
# simulator and the ACME client run it as a device gets an attestation.
$(ATTEST_BIN): tests/attest/standin.c $(SUPPORT_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -iquote tests/support -o $@ $< $(SUPPORT_LIB) $(LDFLAGS_ALL) \
		$(PKG_LIBS)

# The Apple device simulator (tests/sim): OpenSSL, libcurl and libxml2 only.
# Neither lib/ on the include path nor libmdm on the link line, so that it
# cannot use the server's code.
SIM_PKGS   := openssl libxml-2.0 libcurl
SIM_CFLAGS = $(STD) $(WARN) $(OPT) $(HARDEN) -iquote tests/sim \
	$(shell pkg-config --cflags $(SIM_PKGS)) $(CFLAGS)

$(SIM_BIN): $(SIM_SRC) tests/sim/sim.h
	@mkdir -p $(@D)
	$(CC) $(SIM_CFLAGS) -o $@ $(SIM_SRC) $(LDFLAGS_ALL) $(shell pkg-config --libs $(SIM_PKGS))

$(BUILD)/bench/%: bench/%.c $(SUPPORT_LIB) $(LIBMDM)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(TEST_CFLAGS) -iquote tests/support -o $@ $< $(SUPPORT_LIB) \
		$(LIBMDM) $(LDFLAGS_ALL) $(PKG_LIBS) $(TEST_LIBS)

# Benchmarks: figures beside the limits they are measured against.
bench: deps
	$(MAKE) all $(BUILD)/bench/scep_bench $(BUILD)/bench/command_bench
	sh bench/run.sh $(BUILD)

# Installs missing Debian packages when run as root; a no-op otherwise.
deps:
	@sh scripts/install-deps.sh

# The unit suites that need no database (tests/unit/suites.h: UNIT_NO_DB),
# without PostgreSQL: seconds.  `make test` runs them all, and the rest.
unit: $(UNIT_BIN)
	MDM_TEST_NO_DB=1 $(UNIT_BIN)

# The whole suite: real PostgreSQL and Apache, started and stopped here.
test: deps
	$(MAKE) all lint
	sh tests/run.sh $(BUILD)

# The same suite with every binary under AddressSanitizer + UBSan.
san: deps
	$(MAKE) BUILD=build-san SAN=1 all
	sh tests/run.sh build-san

demo: deps
	$(MAKE) all
	sh scripts/demo.sh start $(BUILD)

demo-stop:
	sh scripts/demo.sh stop

# libFuzzer targets (fuzz/*_fuzz.c) against a libmdm built into build-fuzz
# with clang, coverage and ASan+UBSan; FUZZ_SECONDS per target (default 60).
fuzz: deps
	$(MAKE) BUILD=build-fuzz FUZZ=1 CC=clang lib
	FUZZ_LIBS="$(PKG_LIBS)" FUZZ_CFLAGS="$(PKG_CFLAGS)" sh scripts/fuzz.sh build-fuzz

# `make install` and the Debian package (debian/rules runs this target
# with PREFIX=/usr and the variables below) install the same tree.  Files
# that name install paths (the site file's defaults, the units, the
# commented configuration) get PREFIX's on the way.
DOCDIR         ?= $(PREFIX)/share/doc/mdm
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
MDM_USER       ?= mdm
# Set to install the commented configuration as CONFDIR/mdm.conf too (the
# package: /etc/mdm), and the Apache conf-available snippet (the package:
# /etc/apache2/conf-available); by default both only under DATADIR.
CONFDIR        ?=
APACHECONFDIR  ?=
LIGHTTPD_FILES := $(wildcard lighttpd-conf/*)
INSTALL_SED = sed -e 's|/usr/local/lib/mdm|$(PREFIX)/lib/mdm|g' \
	-e 's|/usr/local/share/mdm|$(DATADIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' \
	-e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@FCGIDIR@|$(PREFIX)/lib/mdm/cgi-bin|g' \
	-e 's|@SOCKETS@|/run/mdm|g' -e 's|@USER@|$(MDM_USER)|g'

install: programs
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/mdm/cgi-bin \
		$(DESTDIR)$(DATADIR)/sql $(DESTDIR)$(DATADIR)/apache-conf \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0755 $(BIN_BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(FCGI_BINS) $(DESTDIR)$(PREFIX)/lib/mdm/cgi-bin/
	install -m 0644 $(SQL_FILES) $(DESTDIR)$(DATADIR)/sql/
	install -m 0644 share/apple-ota-trust.pem share/apple-enterprise-attestation-root.pem \
		$(DESTDIR)$(DATADIR)/
	for f in apache-conf/*; do \
		$(INSTALL_SED) $$f >$(DESTDIR)$(DATADIR)/$$f && chmod 0644 $(DESTDIR)$(DATADIR)/$$f || exit 1; \
	done
	if [ -n "$(LIGHTTPD_FILES)" ]; then \
		install -d $(DESTDIR)$(DATADIR)/lighttpd-conf && \
		for f in $(LIGHTTPD_FILES); do \
			$(INSTALL_SED) $$f >$(DESTDIR)$(DATADIR)/$$f && chmod 0644 $(DESTDIR)$(DATADIR)/$$f || exit 1; \
		done; \
	fi
	$(INSTALL_SED) dist/mdm.conf.in >$(DESTDIR)$(DATADIR)/mdm.conf.example
	$(INSTALL_SED) dist/apache2-mdm.conf.in >$(DESTDIR)$(DATADIR)/apache2-mdm.conf
	chmod 0644 $(DESTDIR)$(DATADIR)/mdm.conf.example $(DESTDIR)$(DATADIR)/apache2-mdm.conf
	for u in mdm-pushd.service mdm-eventd.service mdm-fcgi@.service; do \
		$(INSTALL_SED) dist/$$u.in >$(DESTDIR)$(SYSTEMDUNITDIR)/$$u && \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; \
	done
	if [ -n "$(CONFDIR)" ]; then \
		install -d $(DESTDIR)$(CONFDIR) && \
		install -m 0640 $(DESTDIR)$(DATADIR)/mdm.conf.example $(DESTDIR)$(CONFDIR)/mdm.conf; \
	fi
	if [ -n "$(APACHECONFDIR)" ]; then \
		install -d $(DESTDIR)$(APACHECONFDIR) && \
		install -m 0644 $(DESTDIR)$(DATADIR)/apache2-mdm.conf $(DESTDIR)$(APACHECONFDIR)/mdm-server.conf; \
	fi
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

# Binary Debian packages (debian/, dpkg-buildpackage, debhelper) into
# $(BUILD)/deb; built from a copy of the tree in $(BUILD)/deb/src, since
# dpkg-buildpackage writes its results to the parent directory.
deb:
	rm -rf $(BUILD)/deb
	mkdir -p $(BUILD)/deb/src
	git ls-files -z | xargs -0 cp --parents -t $(BUILD)/deb/src
	if [ -d lighttpd-conf ]; then cp -r lighttpd-conf $(BUILD)/deb/src/; fi
	cd $(BUILD)/deb/src && dpkg-buildpackage -b -us -uc
	rm -rf $(BUILD)/deb/src
	ls $(BUILD)/deb/*.deb

FORMAT_FILES = $(wildcard lib/*.c lib/*.h cgi-bin/*.c bin/*.c tests/unit/*.c \
	tests/unit/*.h tests/support/*.c tests/support/*.h tests/e2e/*.c tests/e2e/*.h \
	tests/apns/*.c tests/attest/*.c tests/sim/*.c tests/sim/*.h fuzz/*.c bench/*.c)

format-check: lint
	clang-format --dry-run -Werror $(FORMAT_FILES)

# Every function returning mdm_err carries MDM_WUR (errors.h): a static one
# on its first declaration, a public one on its prototype in lib/*.h, a
# function pointer where its type is written.  GCC cannot attach the
# attribute to the enum, so this keeps the rule.  Prints file:line of each
# declaration without it.  Needs the layout clang-format gives (the return
# type and name on one line, file-scope declarations in column 0).
define LINT_WUR
function refuse(why) { printf "%s:%d: %s\n", FILENAME, FNR, why; bad = 1 }
FNR == 1 { header = FILENAME ~ /\.h$$/ }
/(^|[ \t])mdm_err \(\*/ {
	if ($$0 !~ /MDM_WUR mdm_err \(\*/)
		refuse("a function pointer returning mdm_err without MDM_WUR")
	next
}
/^([A-Za-z_]+ +)*mdm_err( +[A-Za-z_0-9]+\(|$$)/ {
	decl = $$0
	sub(/\(.*/, "", decl)
	name = decl
	sub(/.* /, "", name)
	static = decl ~ /^static /
	key = static ? FILENAME ":" name : name
	if (name == "mdm_err")
		refuse("mdm_err alone on its line: unchecked (MDM_WUR mdm_err name(...))")
	else if (decl ~ /MDM_WUR/)
		wur[key] = 1
	else if (static && !(key in wur))
		refuse("static " name "() returns mdm_err without MDM_WUR")
	else if (!static && header)
		refuse(name "() returns mdm_err without MDM_WUR")
	else if (!static && !(key in wur))
		refuse(name "() returns mdm_err: no prototype with MDM_WUR before it")
}
END { exit bad }
endef
LINT_FILES = $(wildcard lib/*.h) $(wildcard lib/*.c cgi-bin/*.c bin/*.c)

# First shows that the check can fail, then runs it over the tree.
lint: export LINT_WUR_AWK = $(LINT_WUR)
lint:
	@if printf 'static mdm_err f(void);\n' | awk "$$LINT_WUR_AWK" >/dev/null; then \
		echo 'lint: the MDM_WUR check passed a function without it' >&2; exit 1; fi
	@awk "$$LINT_WUR_AWK" $(LINT_FILES)

format:
	clang-format -i $(FORMAT_FILES)

clean:
	rm -rf build build-san build-fuzz
