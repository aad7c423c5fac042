/* profile.c - provider profiles: what a cloud or hypervisor demands of an
 * image (output format and options, size rules, guest needs).  Profiles
 * come from plugins (lib/plugin.c); `scimg convert --provider NAME` applies
 * one, scimg_profile_check() reports what an image lacks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"
#include "scimg-plugin.h"

struct scimg_plugin_report {
	json_object *findings;   /* array the caller owns */
	const char *profile;
	int count;
	int oom;
};

void scimg_plugin_report(struct scimg_plugin_report *rep, const char *id,
			 const char *fmt, ...)
{
	char msg[1024];
	json_object *f;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rep->count++;
	f = json_object_new_object();
	if (!f) {
		rep->oom = 1;
		return;
	}
	json_object_object_add(f, "profile", json_object_new_string(rep->profile));
	json_object_object_add(f, "id", json_object_new_string(id ? id : "unspecified"));
	json_object_object_add(f, "message", json_object_new_string(msg));
	json_object_array_add(rep->findings, f);
}

size_t scimg_profile_count(void)
{
	return scimg_int_profile_count();
}

const char *scimg_profile_name(size_t i)
{
	const struct scimg_plugin_profile *p = scimg_int_profile_at(i, NULL);
	return p ? p->name : NULL;
}

static const struct scimg_plugin_profile *find(struct scimg_ctx *ctx,
					       const char *name,
					       const char **plugin)
{
	const struct scimg_plugin_profile *p = scimg_int_profile_find(name, plugin);
	size_t i, n;
	char list[512] = "";
	size_t used = 0;

	if (p)
		return p;
	n = scimg_int_profile_count();
	for (i = 0; i < n; i++) {
		int k = snprintf(list + used, sizeof(list) - used, "%s%s",
				 used ? ", " : "", scimg_profile_name(i));
		if (k < 0 || (size_t)k >= sizeof(list) - used)
			break;
		used += (size_t)k;
	}
	scimg_int_err(ctx, -ENOENT, "unknown provider profile '%s' (known: %s)",
		      name, used ? list : "none; profiles come from plugins, see 'scimg plugins'");
	return NULL;
}

int scimg_profile_info(struct scimg_ctx *ctx, const char *name,
		       json_object **out)
{
	const struct scimg_plugin_profile *p;
	const char *plugin = NULL;
	json_object *o, *mods;
	size_t i;

	*out = NULL;
	p = find(ctx, name, &plugin);
	if (!p)
		return -ENOENT;
	o = json_object_new_object();
	mods = json_object_new_array();
	if (!o || !mods) {
		json_object_put(o);
		json_object_put(mods);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "description", json_object_new_string(p->description));
	json_object_object_add(o, "plugin", plugin ? json_object_new_string(plugin) : NULL);
	json_object_object_add(o, "format", json_object_new_string(p->format));
	json_object_object_add(o, "options", p->options ? json_object_new_string(p->options) : NULL);
	json_object_object_add(o, "size-alignment", json_object_new_int64((int64_t)p->size_alignment));
	json_object_object_add(o, "max-size", json_object_new_int64((int64_t)p->max_size));
	for (i = 0; p->guest_modules && p->guest_modules[i] && i < 256; i++)
		json_object_array_add(mods, json_object_new_string(p->guest_modules[i]));
	json_object_object_add(o, "guest-modules", mods);
	json_object_object_add(o, "console", p->console ? json_object_new_string(p->console) : NULL);
	*out = o;
	return 0;
}

int scimg_int_profile_apply(struct scimg_ctx *ctx, const char *name,
			    const char **format, const char *user_opts,
			    char **opts_out, uint64_t *size)
{
	const struct scimg_plugin_profile *p;
	const struct scimg_format *want, *given;
	uint64_t s = *size;
	size_t n;
	char *o;

	*opts_out = NULL;
	p = find(ctx, name, NULL);
	if (!p)
		return -ENOENT;
	want = scimg_int_format_find(p->format);
	if (!want)
		return scimg_int_err(ctx, -ENOTSUP,
				     "provider profile '%s' writes format '%s', which is not available",
				     name, p->format);
	if (*format) {
		given = scimg_int_format_find(*format);
		if (given != want)
			return scimg_int_err(ctx, -EINVAL,
					     "provider profile '%s' writes format '%s', not '%s' (leave out -O)",
					     name, p->format, *format);
	}
	*format = p->format;
	if (p->size_alignment > 1 && s % p->size_alignment) {
		uint64_t pad = p->size_alignment - s % p->size_alignment;
		if (!scimg_add_ok(s, pad, &s))
			return scimg_int_err(ctx, -EFBIG, "size %llu is too large",
					     (unsigned long long)*size);
	}
	if (p->max_size && s > p->max_size)
		return scimg_int_err(ctx, -EFBIG,
				     "virtual size %llu is larger than provider profile '%s' allows (%llu)",
				     (unsigned long long)s, name,
				     (unsigned long long)p->max_size);
	*size = s;
	n = (p->options ? strlen(p->options) : 0) + (user_opts ? strlen(user_opts) : 0) + 2;
	o = malloc(n);
	if (!o)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	/* the user's options come last: the last value of a key wins */
	snprintf(o, n, "%s%s%s", p->options ? p->options : "",
		 p->options && *p->options && user_opts && *user_opts ? "," : "",
		 user_opts ? user_opts : "");
	*opts_out = o;
	return 0;
}

int scimg_profile_check(struct scimg_ctx *ctx, const char *name,
			struct scimg_image *img, json_object *findings)
{
	const struct scimg_plugin_profile *p;
	const struct scimg_format *want;
	struct scimg_plugin_report rep;
	int ret;

	p = find(ctx, name, NULL);
	if (!p)
		return -ENOENT;
	if (!findings || !json_object_is_type(findings, json_type_array))
		return scimg_int_err(ctx, -EINVAL, "profile check needs a JSON array for its findings");
	memset(&rep, 0, sizeof(rep));
	rep.findings = findings;
	rep.profile = p->name;
	want = scimg_int_format_find(p->format);
	if (!want || img->fmt != want)
		scimg_plugin_report(&rep, "format",
				    "'%s' is %s; provider profile '%s' expects %s",
				    img->path, img->fmt->name, p->name, p->format);
	if (p->size_alignment > 1 && img->size % p->size_alignment)
		scimg_plugin_report(&rep, "size-alignment",
				    "'%s': virtual size %llu is not a multiple of %llu",
				    img->path, (unsigned long long)img->size,
				    (unsigned long long)p->size_alignment);
	if (p->max_size && img->size > p->max_size)
		scimg_plugin_report(&rep, "max-size",
				    "'%s': virtual size %llu is larger than the %llu provider profile '%s' allows",
				    img->path, (unsigned long long)img->size,
				    (unsigned long long)p->max_size, p->name);
	if (p->check) {
		ret = p->check(img, &rep);
		if (ret < 0) {
			if (!ctx->errcode)
				scimg_int_err(ctx, ret, "provider profile '%s': check failed: %s",
					      p->name, strerror(-ret));
			return ret;
		}
	}
	if (rep.oom)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	return rep.count;
}
