/* plugin.c - the plugin loader: finds plugins, checks what they register
 * against lib/scimg-plugin.h's rules, and wraps their formats into the
 * internal struct scimg_format the rest of the library uses.
 *
 * Plugins are loaded once per process, the first time the registry is
 * consulted: every "*.so" in each directory of $SCIMG_PLUGIN_PATH (or a file
 * named there), then in SCIMG_PLUGIN_DIR, each directory in name order.  A
 * plugin whose name is already loaded is skipped (so a build tree can shadow
 * an installed copy).  A plugin that breaks a rule is refused as a whole and
 * unloaded; the reason is kept for `scimg plugins`.  Loaded plugins stay
 * loaded until the process exits.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "scimg-int.h"
#include "scimg-plugin.h"

#ifndef SCIMG_PLUGIN_DIR
#define SCIMG_PLUGIN_DIR "/usr/local/lib/scimg/plugins"
#endif

/* Sizes of the structs as API version 1 defined them: anything smaller is
 * not a plugin struct at all. */
#define V1_END(type, field) \
	(offsetof(struct type, field) + sizeof(((struct type *)0)->field))
#define PLUGIN_V1_SIZE V1_END(scimg_plugin, profiles)
#define FORMAT_V1_SIZE V1_END(scimg_plugin_format, flags)
#define PROFILE_V1_SIZE V1_END(scimg_plugin_profile, check)

#define MAX_PLUGINS 256
#define MAX_ENTRIES 256    /* formats or profiles of one plugin */
#define MAX_NAME 31

enum plugin_status { PLUGIN_LOADED, PLUGIN_REFUSED, PLUGIN_SHADOWED };

/* A format a plugin adds: what image.c sees, then the plugin's struct. */
struct plugin_fmt {
	struct scimg_format fmt;           /* first: img->fmt points here */
	struct scimg_plugin_format pf;     /* zero-extended copy */
};

struct loaded_plugin {
	char *path;
	char *name;                        /* NULL when unknown */
	char *version;
	char *description;
	uint32_t api_version;
	enum plugin_status status;
	char *error;                       /* why refused / shadowed */
	void *handle;                      /* dlopen handle, NULL if static */
	struct plugin_fmt *fmts;
	size_t nfmts;
	struct scimg_plugin_profile *profs;
	size_t nprofs;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int loaded;                          /* read with acquire */
static struct loaded_plugin *plugins;
static size_t nplugins, nrefused;
/* Flat lists over the loaded plugins, for the registry. */
static const struct scimg_format **fmt_list;
static size_t nfmt_list;
static const struct scimg_plugin_profile **prof_list;
static const char **prof_owner;
static size_t nprof_list;

/* ---- small helpers ------------------------------------------------------ */

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int valid_name(const char *s)
{
	size_t n = 0;

	if (!s || !*s)
		return 0;
	for (; *s; s++, n++) {
		if (n >= MAX_NAME)
			return 0;
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_'))
			return 0;
	}
	return 1;
}

/* Checks shared by every versioned struct: SIZE and VERSION as the plugin
 * declared them, MIN the API-1 size, CUR our sizeof.  Writes the reason to
 * ERR (size LEN) and returns -1 when refused. */
static int check_header(const char *what, uint32_t size, uint32_t version,
			size_t min, size_t cur, char *err, size_t len)
{
	if (version == 0 || version > SCIMG_PLUGIN_API_VERSION) {
		snprintf(err, len,
			 "%s declares plugin API version %u, but this libscimg supports versions 1 to %d; rebuild the plugin against this scimg's scimg-plugin.h or upgrade scimg",
			 what, version, SCIMG_PLUGIN_API_VERSION);
		return -1;
	}
	if (size < min) {
		snprintf(err, len,
			 "%s is %u bytes, smaller than the %zu bytes of plugin API version 1 (struct_size not set?)",
			 what, size, min);
		return -1;
	}
	if (size > cur) {
		snprintf(err, len,
			 "%s is %u bytes, larger than the %zu bytes of API version %u it declares",
			 what, size, cur, version);
		return -1;
	}
	return 0;
}

/* ---- wrapping a plugin format --------------------------------------------- */

#define PFMT(img) (&((const struct plugin_fmt *)(const void *)(img)->fmt)->pf)

/* A callback failed without recording why: say so rather than "no error". */
static int fix_error(struct scimg_image *img, int r, const char *cb)
{
	if (r < 0 && img->ctx->errcode == 0)
		scimg_int_err(img->ctx, r,
			      "'%s': format '%s' (plugin) failed in %s without a message: %s",
			      img->path, img->fmt->name, cb, strerror(-r));
	return r > 0 ? 0 : r;
}

static int tr_open(struct scimg_image *img)
{
	return fix_error(img, PFMT(img)->open(img), "open");
}

static void tr_close(struct scimg_image *img)
{
	if (PFMT(img)->close)
		PFMT(img)->close(img);
}

static int tr_info(struct scimg_image *img, json_object *obj)
{
	return fix_error(img, PFMT(img)->info(img, obj), "info");
}

static int tr_create(struct scimg_image *img, const struct scimg_opts *opts)
{
	int r;

	(void)opts; /* the plugin reads them through scimg_plugin_opt() */
	r = fix_error(img, PFMT(img)->create(img), "create");
	/* the plugin's close frees what a failed create left */
	if (r < 0 && PFMT(img)->close)
		PFMT(img)->close(img);
	if (r < 0)
		img->priv = NULL;
	return r;
}

static int tr_finish(struct scimg_image *img)
{
	return fix_error(img, PFMT(img)->finish(img), "finish");
}

int scimg_int_plugin_probe(const struct scimg_format *f,
			   const struct scimg_probe *p)
{
	const struct scimg_plugin_format *pf = f->plugin;
	struct scimg_plugin_probe pp;
	int score;

	if (!pf || !pf->probe)
		return 0;
	memset(&pp, 0, sizeof(pp));
	pp.struct_size = sizeof(pp);
	pp.filename = p->filename;
	pp.head = p->head;
	pp.head_len = p->head_len;
	pp.tail = p->tail;
	pp.tail_len = p->tail_len;
	pp.file_size = p->file_size;
	score = pf->probe(&pp);
	if (score < 0)
		return 0;
	return score > 100 ? 100 : score;
}

static int name_taken(const char *name, const struct loaded_plugin *self,
		      char *err, size_t len)
{
	size_t i, j;

	if (scimg_int_builtin_format_find(name) || strcmp(name, "vpc") == 0) {
		snprintf(err, len, "format '%s' is a built-in format", name);
		return 1;
	}
	for (i = 0; i < nplugins; i++) {
		const struct loaded_plugin *o = &plugins[i];
		if (o->status != PLUGIN_LOADED && o != self)
			continue;
		for (j = 0; j < o->nfmts; j++) {
			if (o->fmts[j].pf.name && strcmp(o->fmts[j].pf.name, name) == 0) {
				snprintf(err, len, "format '%s' is already added by plugin '%s' (%s)",
					 name, o->name ? o->name : "?", o->path);
				return 1;
			}
		}
	}
	return 0;
}

/* Copy and check one format; fill the wrapper.  -1 with ERR when refused. */
static int wrap_format(struct loaded_plugin *lp, struct plugin_fmt *w,
		       const struct scimg_plugin_format *src, size_t idx,
		       char *err, size_t len)
{
	struct scimg_plugin_format *pf = &w->pf;
	char what[96], tmp[512];
	unsigned known = SCIMG_PLUGIN_FMT_SEQUENTIAL_WRITE | SCIMG_PLUGIN_FMT_PARALLEL_READ;

	snprintf(what, sizeof(what), "format #%zu", idx + 1);
	if (check_header(what, src->struct_size, src->api_version, FORMAT_V1_SIZE,
			 sizeof(*pf), err, len) < 0)
		return -1;
	memset(pf, 0, sizeof(*pf));
	memcpy(pf, src, src->struct_size);
	if (!valid_name(pf->name)) {
		snprintf(err, len, "format #%zu has no valid name (lower-case letters, digits, '-' and '_', at most %d)",
			 idx + 1, MAX_NAME);
		return -1;
	}
	snprintf(what, sizeof(what), "format '%s'", pf->name);
	if (!pf->description) {
		snprintf(err, len, "%s has no description", what);
		return -1;
	}
	if (pf->flags & ~known) {
		snprintf(err, len, "%s has unknown flags 0x%x", what, pf->flags & ~known);
		return -1;
	}
	if (name_taken(pf->name, lp, tmp, sizeof(tmp))) {
		snprintf(err, len, "%s", tmp);
		return -1;
	}
	memset(&w->fmt, 0, sizeof(w->fmt));
	w->fmt.name = pf->name;
	w->fmt.description = pf->description;
	w->fmt.plugin = pf;
	/* every slot as the plugin gave it (wrapped where the plugin API
	 * differs), so that the contract below sees the plugin's shape */
	w->fmt.open = pf->open ? tr_open : NULL;
	w->fmt.pread = pf->pread;
	w->fmt.block_status = pf->block_status;
	w->fmt.info = pf->info ? tr_info : NULL;
	w->fmt.open_opts = pf->open_opts;
	w->fmt.close = tr_close;
	w->fmt.create_opts = pf->create_opts;
	w->fmt.create = pf->create ? tr_create : NULL;
	w->fmt.pwrite = pf->pwrite;
	w->fmt.write_zeroes = pf->write_zeroes;
	w->fmt.finish = pf->finish ? tr_finish : NULL;
	w->fmt.compress_unit = pf->compress_unit;
	w->fmt.compress = pf->compress;
	w->fmt.pwrite_compressed = pf->pwrite_compressed;
	if (pf->flags & SCIMG_PLUGIN_FMT_SEQUENTIAL_WRITE)
		w->fmt.flags |= SCIMG_FMT_SEQUENTIAL_WRITE;
	if (pf->flags & SCIMG_PLUGIN_FMT_PARALLEL_READ)
		w->fmt.flags |= SCIMG_FMT_PARALLEL_READ;
	/* the rules every format keeps, built-in or not (lib/formats/driver.h) */
	if (scimg_int_format_contract(&w->fmt, what, err, len) < 0)
		return -1;
	return 0;
}

static int profile_taken(const char *name)
{
	size_t i, j;

	for (i = 0; i < nplugins; i++) {
		const struct loaded_plugin *o = &plugins[i];
		if (o->status != PLUGIN_LOADED)
			continue;
		for (j = 0; j < o->nprofs; j++)
			if (strcmp(o->profs[j].name, name) == 0)
				return 1;
	}
	return 0;
}

static int copy_profile(struct scimg_plugin_profile *dst,
			const struct scimg_plugin_profile *src, size_t idx,
			const struct loaded_plugin *lp, char *err, size_t len)
{
	char what[96];
	size_t j;

	snprintf(what, sizeof(what), "profile #%zu", idx + 1);
	if (check_header(what, src->struct_size, src->api_version, PROFILE_V1_SIZE,
			 sizeof(*dst), err, len) < 0)
		return -1;
	memset(dst, 0, sizeof(*dst));
	memcpy(dst, src, src->struct_size);
	if (!valid_name(dst->name)) {
		snprintf(err, len, "profile #%zu has no valid name", idx + 1);
		return -1;
	}
	if (!dst->description || !dst->format) {
		snprintf(err, len, "profile '%s' lacks its %s", dst->name,
			 !dst->description ? "description" : "output format");
		return -1;
	}
	if (dst->size_alignment & (dst->size_alignment - 1)) {
		snprintf(err, len, "profile '%s': size_alignment %llu is not a power of two",
			 dst->name, (unsigned long long)dst->size_alignment);
		return -1;
	}
	for (j = 0; j < idx; j++)
		if (strcmp(lp->profs[j].name, dst->name) == 0)
			break;
	if (j < idx || profile_taken(dst->name)) {
		snprintf(err, len, "profile '%s' is already defined", dst->name);
		return -1;
	}
	return 0;
}

/* ---- registering -------------------------------------------------------- */

static struct loaded_plugin *new_entry(const char *path)
{
	struct loaded_plugin *n;

	if (nplugins >= MAX_PLUGINS)
		return NULL;
	n = realloc(plugins, (nplugins + 1) * sizeof(*n));
	if (!n)
		return NULL;
	plugins = n;
	n = &plugins[nplugins++];
	memset(n, 0, sizeof(*n));
	n->path = xstrdup(path);
	n->status = PLUGIN_REFUSED;
	return n;
}

static void refuse(struct loaded_plugin *lp, const char *msg)
{
	free(lp->error);
	lp->error = xstrdup(msg);
	lp->status = PLUGIN_REFUSED;
	free(lp->fmts);
	lp->fmts = NULL;
	lp->nfmts = 0;
	free(lp->profs);
	lp->profs = NULL;
	lp->nprofs = 0;
	nrefused++;
}

/* Fill LP from P; on any broken rule LP ends REFUSED with the reason. */
static int do_register(struct loaded_plugin *lp, const struct scimg_plugin *p)
{
	struct scimg_plugin pl;
	char err[768];
	size_t i, nf = 0, np = 0;

	if (!p) {
		refuse(lp, "scimg_plugin_init() returned NULL");
		return -EINVAL;
	}
	if (check_header("struct scimg_plugin", p->struct_size, p->api_version,
			 PLUGIN_V1_SIZE, sizeof(pl), err, sizeof(err)) < 0) {
		lp->api_version = p->api_version;
		refuse(lp, err);
		return -EPROTO;
	}
	memset(&pl, 0, sizeof(pl));
	memcpy(&pl, p, p->struct_size);
	lp->api_version = pl.api_version;
	if (!valid_name(pl.name)) {
		refuse(lp, "the plugin has no valid name (lower-case letters, digits, '-' and '_')");
		return -EINVAL;
	}
	lp->name = xstrdup(pl.name);
	lp->version = xstrdup(pl.version);
	lp->description = xstrdup(pl.description);
	if (!pl.version) {
		snprintf(err, sizeof(err), "plugin '%s' has no version string", pl.name);
		refuse(lp, err);
		return -EINVAL;
	}
	for (i = 0; i < nplugins; i++) {
		struct loaded_plugin *o = &plugins[i];
		if (o != lp && o->status == PLUGIN_LOADED && o->name &&
		    strcmp(o->name, pl.name) == 0) {
			snprintf(err, sizeof(err), "plugin '%s' is already loaded from '%s'",
				 pl.name, o->path);
			lp->error = xstrdup(err);
			lp->status = PLUGIN_SHADOWED;
			return -EEXIST;
		}
	}
	while (pl.formats && pl.formats[nf] && nf <= MAX_ENTRIES)
		nf++;
	while (pl.profiles && pl.profiles[np] && np <= MAX_ENTRIES)
		np++;
	if (nf > MAX_ENTRIES || np > MAX_ENTRIES) {
		snprintf(err, sizeof(err), "plugin '%s' has more than %d formats or profiles (list not NULL-terminated?)",
			 pl.name, MAX_ENTRIES);
		refuse(lp, err);
		return -EINVAL;
	}
	if (!nf && !np) {
		snprintf(err, sizeof(err), "plugin '%s' adds no format and no profile", pl.name);
		refuse(lp, err);
		return -EINVAL;
	}
	lp->fmts = calloc(nf ? nf : 1, sizeof(*lp->fmts));
	lp->profs = calloc(np ? np : 1, sizeof(*lp->profs));
	if (!lp->fmts || !lp->profs) {
		refuse(lp, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < nf; i++) {
		char why[640];
		/* count before checking: name_taken() looks at earlier ones */
		lp->nfmts = i;
		if (wrap_format(lp, &lp->fmts[i], pl.formats[i], i, why, sizeof(why)) < 0) {
			snprintf(err, sizeof(err), "plugin '%s': %s", pl.name, why);
			refuse(lp, err);
			return -EINVAL;
		}
	}
	lp->nfmts = nf;
	for (i = 0; i < np; i++) {
		char why[640];
		if (copy_profile(&lp->profs[i], pl.profiles[i], i, lp, why, sizeof(why)) < 0) {
			snprintf(err, sizeof(err), "plugin '%s': %s", pl.name, why);
			refuse(lp, err);
			return -EINVAL;
		}
	}
	lp->nprofs = np;
	lp->status = PLUGIN_LOADED;
	return 0;
}

/* Rebuild the flat lists after a plugin was added. */
static int publish(struct loaded_plugin *lp)
{
	const struct scimg_format **f;
	const struct scimg_plugin_profile **p;
	const char **o;
	size_t i;

	f = realloc(fmt_list, (nfmt_list + lp->nfmts + 1) * sizeof(*f));
	if (!f)
		return -ENOMEM;
	fmt_list = f;
	p = realloc(prof_list, (nprof_list + lp->nprofs + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	prof_list = p;
	o = realloc(prof_owner, (nprof_list + lp->nprofs + 1) * sizeof(*o));
	if (!o)
		return -ENOMEM;
	prof_owner = o;
	for (i = 0; i < lp->nfmts; i++)
		fmt_list[nfmt_list++] = &lp->fmts[i].fmt;
	for (i = 0; i < lp->nprofs; i++) {
		prof_owner[nprof_list] = lp->name;
		prof_list[nprof_list++] = &lp->profs[i];
	}
	return 0;
}

static int register_locked(const struct scimg_plugin *p, const char *path,
			   void *handle)
{
	struct loaded_plugin *lp = new_entry(path);
	int ret;

	if (!lp)
		return -ENOMEM;
	lp->handle = handle;
	ret = do_register(lp, p);
	if (ret == 0 && publish(lp) < 0) {
		refuse(lp, "out of memory");
		ret = -ENOMEM;
	}
	if (ret < 0) {
		/* everything kept of a refused plugin was copied: unload it */
		if (handle)
			dlclose(handle);
		lp->handle = NULL;
	}
	return ret;
}

int scimg_int_plugin_register(const struct scimg_plugin *p, const char *path)
{
	int ret;

	scimg_int_plugins_load();
	pthread_mutex_lock(&lock);
	ret = register_locked(p, path, NULL);
	pthread_mutex_unlock(&lock);
	return ret;
}

/* ---- loading ------------------------------------------------------------ */

#ifndef SCIMG_NO_PLUGIN_LOADING
static void load_file(const char *path)
{
	scimg_plugin_init_fn init;
	struct loaded_plugin *lp;
	void *h;
	char err[768];
	size_t i;

	/* the same file through two path entries is loaded once, quietly */
	for (i = 0; i < nplugins; i++)
		if (strcmp(plugins[i].path, path) == 0)
			return;
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		lp = new_entry(path);
		if (lp) {
			snprintf(err, sizeof(err), "cannot load: %s", e ? e : "unknown error");
			refuse(lp, err);
		}
		return;
	}
	*(void **)&init = dlsym(h, SCIMG_PLUGIN_INIT_SYMBOL);
	if (!init) {
		lp = new_entry(path);
		if (lp)
			refuse(lp, "no scimg_plugin_init symbol: not a scimg plugin");
		dlclose(h);
		return;
	}
	register_locked(init(), path, h);
}

static int has_so_suffix(const char *n)
{
	size_t l = strlen(n);
	return l > 3 && strcmp(n + l - 3, ".so") == 0 && n[0] != '.';
}

static int so_filter(const struct dirent *d)
{
	return has_so_suffix(d->d_name);
}

static void load_dir(const char *dir, int quiet_if_missing)
{
	struct dirent **names = NULL;
	struct stat st;
	int n, i;

	if (stat(dir, &st) < 0) {
		if (!quiet_if_missing) {
			struct loaded_plugin *lp = new_entry(dir);
			if (lp)
				refuse(lp, "$SCIMG_PLUGIN_PATH names a file or directory that does not exist");
		}
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		load_file(dir);
		return;
	}
	n = scandir(dir, &names, so_filter, alphasort);
	if (n < 0)
		return;
	for (i = 0; i < n; i++) {
		size_t l = strlen(dir) + strlen(names[i]->d_name) + 2;
		char *p = malloc(l);
		if (p) {
			snprintf(p, l, "%s/%s", dir, names[i]->d_name);
			if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
				load_file(p);
			free(p);
		}
		free(names[i]);
	}
	free(names);
}

static void load_all(void)
{
	const char *env = getenv("SCIMG_PLUGIN_PATH");

	if (env && *env) {
		char *copy = strdup(env), *save = NULL, *tok;
		for (tok = copy ? strtok_r(copy, ":", &save) : NULL; tok;
		     tok = strtok_r(NULL, ":", &save))
			load_dir(tok, 0);
		free(copy);
	}
	load_dir(SCIMG_PLUGIN_DIR, 1);
}
#endif

void scimg_int_plugins_load(void)
{
	if (__atomic_load_n(&loaded, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&lock);
	if (!loaded) {
#ifndef SCIMG_NO_PLUGIN_LOADING
		load_all();
#endif
		__atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&lock);
}

/* ---- registry access ---------------------------------------------------- */

size_t scimg_int_plugin_format_count(void)
{
	size_t n;

	scimg_int_plugins_load();
	pthread_mutex_lock(&lock);
	n = nfmt_list;
	pthread_mutex_unlock(&lock);
	return n;
}

const struct scimg_format *scimg_int_plugin_format_at(size_t i)
{
	const struct scimg_format *f = NULL;

	scimg_int_plugins_load();
	pthread_mutex_lock(&lock);
	if (i < nfmt_list)
		f = fmt_list[i];
	pthread_mutex_unlock(&lock);
	return f;
}

size_t scimg_int_profile_count(void)
{
	size_t n;

	scimg_int_plugins_load();
	pthread_mutex_lock(&lock);
	n = nprof_list;
	pthread_mutex_unlock(&lock);
	return n;
}

const struct scimg_plugin_profile *scimg_int_profile_at(size_t i,
							const char **plugin)
{
	const struct scimg_plugin_profile *p = NULL;

	scimg_int_plugins_load();
	pthread_mutex_lock(&lock);
	if (i < nprof_list) {
		p = prof_list[i];
		if (plugin)
			*plugin = prof_owner[i];
	}
	pthread_mutex_unlock(&lock);
	return p;
}

const struct scimg_plugin_profile *scimg_int_profile_find(const char *name,
							  const char **plugin)
{
	size_t i, n = scimg_int_profile_count();

	for (i = 0; i < n; i++) {
		const struct scimg_plugin_profile *p = scimg_int_profile_at(i, plugin);
		if (p && strcmp(p->name, name) == 0)
			return p;
	}
	return NULL;
}

int scimg_int_err_unknown_format(struct scimg_ctx *ctx, const char *name)
{
	size_t bad;

	scimg_int_plugins_load();
	pthread_mutex_lock(&lock);
	bad = nrefused;
	pthread_mutex_unlock(&lock);
	if (bad)
		return scimg_int_err(ctx, -ENOTSUP,
				     "unknown format '%s' (%zu plugin%s could not be loaded; see 'scimg plugins')",
				     name, bad, bad == 1 ? "" : "s");
	return scimg_int_err(ctx, -ENOTSUP, "unknown format '%s'", name);
}

/* ---- public listing --------------------------------------------------- */

const char *scimg_plugins_dir(void)
{
	return SCIMG_PLUGIN_DIR;
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *describe(const struct loaded_plugin *lp)
{
	static const char *const status[] = { "loaded", "refused", "skipped" };
	json_object *o = json_object_new_object(), *fa, *pa;
	size_t i;

	if (!o)
		return NULL;
	json_object_object_add(o, "name", jstr(lp->name));
	json_object_object_add(o, "version", jstr(lp->version));
	json_object_object_add(o, "api-version",
			       lp->api_version ? json_object_new_int((int)lp->api_version) : NULL);
	json_object_object_add(o, "path", jstr(lp->path));
	json_object_object_add(o, "status", json_object_new_string(status[lp->status]));
	if (lp->description)
		json_object_object_add(o, "description", jstr(lp->description));
	if (lp->error)
		json_object_object_add(o, "error", jstr(lp->error));
	fa = json_object_new_array();
	pa = json_object_new_array();
	for (i = 0; fa && i < lp->nfmts; i++) {
		const struct scimg_plugin_format *pf = &lp->fmts[i].pf;
		json_object *f = json_object_new_object();
		if (!f)
			break;
		json_object_object_add(f, "name", jstr(pf->name));
		json_object_object_add(f, "description", jstr(pf->description));
		json_object_object_add(f, "api-version", json_object_new_int((int)pf->api_version));
		json_object_object_add(f, "read", json_object_new_boolean(pf->open != NULL));
		json_object_object_add(f, "write", json_object_new_boolean(pf->create != NULL));
		json_object_object_add(f, "compress", json_object_new_boolean(pf->compress != NULL));
		json_object_array_add(fa, f);
	}
	for (i = 0; pa && i < lp->nprofs; i++) {
		const struct scimg_plugin_profile *pp = &lp->profs[i];
		json_object *p = json_object_new_object();
		if (!p)
			break;
		json_object_object_add(p, "name", jstr(pp->name));
		json_object_object_add(p, "description", jstr(pp->description));
		json_object_object_add(p, "api-version", json_object_new_int((int)pp->api_version));
		json_object_object_add(p, "format", jstr(pp->format));
		json_object_array_add(pa, p);
	}
	json_object_object_add(o, "formats", fa);
	json_object_object_add(o, "profiles", pa);
	return o;
}

int scimg_plugins_list(struct scimg_ctx *ctx, json_object **out)
{
	json_object *o, *arr;
	const char *env = getenv("SCIMG_PLUGIN_PATH");
	size_t i;

	*out = NULL;
	scimg_int_plugins_load();
	o = json_object_new_object();
	arr = json_object_new_array();
	if (!o || !arr) {
		json_object_put(o);
		json_object_put(arr);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	json_object_object_add(o, "api-version", json_object_new_int(SCIMG_PLUGIN_API_VERSION));
	json_object_object_add(o, "plugin-dir", json_object_new_string(SCIMG_PLUGIN_DIR));
	json_object_object_add(o, "plugin-path", env ? json_object_new_string(env) : NULL);
	pthread_mutex_lock(&lock);
	for (i = 0; i < nplugins; i++) {
		json_object *p = describe(&plugins[i]);
		if (!p) {
			pthread_mutex_unlock(&lock);
			json_object_put(o);
			json_object_put(arr);
			return scimg_int_err(ctx, -ENOMEM, "out of memory");
		}
		json_object_array_add(arr, p);
	}
	pthread_mutex_unlock(&lock);
	json_object_object_add(o, "plugins", arr);
	*out = o;
	return 0;
}
