/* handle.c - the libguestfs handle of a bootfix run: launch (through
 * lib/appliance.c: KVM, then TCG), error capture, running commands in the guest, small text helpers. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "appliance.h"
#include "bootfix-int.h"


/* ---- strings ------------------------------------------------------------ */

char *bf_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *bf_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* ---- reporting ------------------------------------------------------------ */

int bf_gerr(struct bf *bf, const char *fmt, ...)
{
	char what[512];
	const char *ge = bf->g ? guestfs_last_error(bf->g) : NULL;
	int en = bf->g ? guestfs_last_errno(bf->g) : 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return scimg_int_err(bf->ctx, en > 0 ? -en : -EIO, "'%s': %s: %s",
			     bf->path, what, ge ? ge : "libguestfs failed");
}

void bf_change(struct bf *bf, const char *what, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "what", json_object_new_string(what));
	json_object_object_add(o, "change", json_object_new_string(msg));
	json_object_array_add(bf->changes, o);
}

void bf_warn(struct bf *bf, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_array_add(bf->warnings, json_object_new_string(msg));
}

void bf_notice(struct bf *bf, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (bf->opts->notice)
		bf->opts->notice(bf->opts->notice_opaque, msg);
}

/* ---- launch ----------------------------------------------------------------- */

struct bf_setup {
	struct bf *bf;
	const char *extra, *extra_fmt;
};

static int bf_setup_handle(guestfs_h *g, void *opaque)
{
	struct bf_setup *su = opaque;
	struct bf *bf = su->bf;

	/* dracut and update-initramfs of a generic kernel need room, and two
	 * vCPUs let TCG compress the initramfs on both host cores. */
	if (guestfs_set_memsize(g, 1536) == -1 || guestfs_set_smp(g, 2) == -1)
		return -1;
	if (guestfs_add_drive_opts(g, bf->path,
				   GUESTFS_ADD_DRIVE_OPTS_FORMAT, bf->format,
				   GUESTFS_ADD_DRIVE_OPTS_READONLY, bf->dry_run,
				   GUESTFS_ADD_DRIVE_OPTS_CACHEMODE, "unsafe",
				   -1) == -1)
		return -1;
	if (su->extra &&
	    guestfs_add_drive_opts(g, su->extra,
				   GUESTFS_ADD_DRIVE_OPTS_FORMAT, su->extra_fmt,
				   GUESTFS_ADD_DRIVE_OPTS_CACHEMODE, "unsafe",
				   -1) == -1)
		return -1;
	return 0;
}

static void bf_launch_notice(void *opaque, const char *msg)
{
	bf_notice(opaque, "%s", msg);
}

int bf_launch(struct bf *bf, const char *extra, const char *extra_fmt)
{
	struct bf_setup su = { bf, extra, extra_fmt };
	struct scimg_gf_launch l = {
		.path = bf->path,
		.setup = bf_setup_handle,
		.setup_opaque = &su,
		.notice = bf_launch_notice,
		.notice_opaque = bf,
	};
	int r = scimg_int_gf_launch(bf->ctx, &l, &bf->g);

	json_object_object_add(bf->report, "accelerator-fallback",
			       json_object_new_boolean(l.tcg_fallback));
	return r;
}

/* ---- guest files and commands -------------------------------------------- */

int bf_exists(struct bf *bf, const char *path)
{
	return guestfs_exists(bf->g, path) == 1;
}

int bf_is_dir(struct bf *bf, const char *path)
{
	return guestfs_is_dir(bf->g, path) == 1;
}

int bf_read(struct bf *bf, const char *path, size_t max, char **out)
{
	int64_t sz;
	size_t n;
	char *s, *r;

	*out = NULL;
	if (guestfs_is_file_opts(bf->g, path, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) != 1)
		return 0;
	sz = guestfs_filesize(bf->g, path);
	if (sz < 0)
		return bf_gerr(bf, "size of '%s'", path);
	if ((uint64_t)sz > max)
		return scimg_int_err(bf->ctx, -EFBIG,
				     "'%s': guest file '%s' is %lld bytes, expected at most %zu",
				     bf->path, path, (long long)sz, max);
	s = guestfs_read_file(bf->g, path, &n);
	if (!s)
		return bf_gerr(bf, "reading '%s'", path);
	r = realloc(s, n + 1);
	if (!r) {
		free(s);
		return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
	}
	r[n] = '\0';
	*out = r;
	return 0;
}

int bf_write(struct bf *bf, const char *path, const char *content)
{
	if (bf->dry_run)
		return 0;
	if (guestfs_write(bf->g, path, content, strlen(content)) == -1)
		return bf_gerr(bf, "writing '%s'", path);
	return 0;
}

/* Scripts run in the guest with a known PATH and the C locale. */
#define SH_PROLOGUE "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n" \
		    "export LC_ALL=C\n"

/* The last occurrence of MARKER in S, or NULL. */
static char *last_marker(char *s, const char *marker)
{
	char *m = NULL, *p;

	for (p = strstr(s, marker); p; p = strstr(p + 1, marker))
		m = p;
	return m;
}

/* The part of OUT before the last line "MARKER<n>", cut there; its status in
 * *RC (-1 when the marker is missing). */
static void cut_at_marker(char *out, const char *marker, int *rc)
{
	char *m = last_marker(out, marker);

	*rc = -1;
	if (m) {
		*rc = atoi(m + strlen(marker));
		*m = '\0';
	}
}

int bf_sh(struct bf *bf, const char *script, char **out, int *rc)
{
	static const char marker[] = "@@SCIMG-RC=";
	char *full, *res;

	if (out)
		*out = NULL;
	*rc = -1;
	full = bf_printf(SH_PROLOGUE "(\n%s\n) </dev/null 2>&1\necho \"%s$?\"\n",
			 script, marker);
	if (!full)
		return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
	res = guestfs_sh(bf->g, full);
	free(full);
	if (!res)
		return bf_gerr(bf, "running a command in the guest");
	cut_at_marker(res, marker, rc);
	if (out)
		*out = res;
	else
		free(res);
	return 0;
}

int bf_sh_pair(struct bf *bf, const char *a, char **out_a, int *rc_a,
	       const char *b, char **out_b, int *rc_b)
{
	static const char ma[] = "@@SCIMG-A-RC=", mb[] = "@@SCIMG-B-RC=";
	char *full, *res, *sep;

	*out_a = *out_b = NULL;
	*rc_a = *rc_b = -1;
	/* A's output goes to a file (in the guest's /tmp, removed at the end)
	 * so the two do not interleave; B's comes after A's marker. */
	full = bf_printf(SH_PROLOGUE
			 "t=$(mktemp /tmp/scimg-out.XXXXXX) || exit 1\n"
			 "(\n%s\n) </dev/null >\"$t\" 2>&1 &\n"
			 "pa=$!\n"
			 "b=$( (\n%s\n) </dev/null 2>&1; echo \"%s$?\")\n"
			 "wait $pa\n"
			 "ra=$?\n"
			 "cat \"$t\"; rm -f \"$t\"\n"
			 "echo \"%s$ra\"\n"
			 "printf '%%s\\n' \"$b\"\n",
			 a, b, mb, ma);
	if (!full)
		return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
	res = guestfs_sh(bf->g, full);
	free(full);
	if (!res)
		return bf_gerr(bf, "running commands in the guest");
	/* A's output, A's marker, then B's output and B's marker */
	cut_at_marker(res, mb, rc_b);
	sep = last_marker(res, ma);
	if (sep) {
		char *nl = strchr(sep, '\n');
		*out_b = bf_strdup(nl ? nl + 1 : "");
		*sep = '\0';
		*rc_a = atoi(sep + strlen(ma));
	} else {
		*out_b = bf_strdup("");
	}
	*out_a = res;
	if (!*out_b) {
		free(res);
		*out_a = NULL;
		return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
	}
	return 0;
}

/* ---- NAME=value files ----------------------------------------------------- */

/* Find the last line "NAME=" (optionally after "export "); its start and
 * the end of the line. */
static const char *shvar_find(const char *text, const char *name,
			      const char **eol)
{
	const char *p = text, *found = NULL;
	size_t nl = strlen(name);

	while (p && *p) {
		const char *s = p, *e = strchr(p, '\n');

		while (*s == ' ' || *s == '\t')
			s++;
		if (strncmp(s, "export ", 7) == 0)
			s += 7;
		if (strncmp(s, name, nl) == 0 && s[nl] == '=') {
			found = p;
			*eol = e ? e : p + strlen(p);
		}
		p = e ? e + 1 : NULL;
	}
	return found;
}

char *bf_shvar_get(const char *text, const char *name)
{
	const char *line, *eol, *v;
	char *out, *o;
	char q = 0;

	line = shvar_find(text, name, &eol);
	if (!line)
		return NULL;
	v = strchr(line, '=') + 1;
	out = malloc((size_t)(eol - v) + 1);
	if (!out)
		return NULL;
	o = out;
	for (; v < eol; v++) {
		if (!q && (*v == '"' || *v == '\'')) {
			q = *v;
			continue;
		}
		if (q && *v == q) {
			q = 0;
			continue;
		}
		if (!q && (*v == '#' || *v == ' ' || *v == '\t'))
			break;
		if (q == '"' && *v == '\\' && v + 1 < eol)
			v++;
		*o++ = *v;
	}
	*o = '\0';
	return out;
}

char *bf_shvar_set(const char *text, const char *name, const char *value,
		   int quote)
{
	const char *line, *eol;
	char *nl, *out;

	nl = quote ? bf_printf("%s=\"%s\"", name, value) : bf_printf("%s=%s", name, value);
	if (!nl)
		return NULL;
	line = shvar_find(text, name, &eol);
	if (line)
		out = bf_printf("%.*s%s%s", (int)(line - text), text, nl, eol);
	else
		out = bf_printf("%s%s%s\n", text,
				*text && text[strlen(text) - 1] != '\n' ? "\n" : "", nl);
	free(nl);
	return out;
}
