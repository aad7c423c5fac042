/* info.c - scimg_image_info(): qemu-img's ImageInfo JSON (QEMU's qapi
 * ImageInfo / ImageInfoSpecific: same key names, nesting, types and format
 * names, "vpc" for VHD) with scimg's own details beside it, under "scimg";
 * and the cleaning of strings put in JSON (invalid UTF-8).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "scimg-int.h"

/* ---- JSON strings ------------------------------------------------------ */


/* A printable character (valid UTF-8, no control character): its length,
 * else 0 (escaped as \\xHH, like every message: scimg_int_escape_text). */
static size_t text_len(const unsigned char *p, size_t n)
{
	size_t l = scimg_int_utf8_len(p, n);

	return l == 1 && (p[0] < 0x20 || p[0] == 0x7f) ? 0 : l;
}

char *scimg_int_json_clean_str(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, bad = 0, l;
	char *out, *o;

	for (i = 0; i < n; i += l)
		if (!(l = text_len(p + i, n - i)))
			bad++, l = 1;
	if (!bad)
		return NULL;
	out = malloc(n + bad * 3 + 1);
	if (!out)
		return NULL;
	for (i = 0, o = out; i < n; i += l) {
		if ((l = text_len(p + i, n - i))) {
			memcpy(o, p + i, l);
			o += l;
		} else {
			l = 1;
			o += sprintf(o, "\\x%02x", p[i]);
		}
	}
	*o = '\0';
	return out;
}

static int clean(json_object *o, int depth)
{
	size_t i, n;
	char *c;

	if (!o || depth > 200)
		return 0;
	switch (json_object_get_type(o)) {
	case json_type_string:
		c = scimg_int_json_clean_str(json_object_get_string(o),
					     (size_t)json_object_get_string_len(o));
		if (c) {
			json_object_set_string(o, c);
			free(c);
		}
		return 0;
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			clean(json_object_array_get_idx(o, i), depth + 1);
		return 0;
	case json_type_object: {
		int badkey = 0;
		json_object_object_foreach(o, key, val) {
			clean(val, depth + 1);
			if ((c = scimg_int_json_clean_str(key, strlen(key)))) {
				badkey = 1;
				free(c);
			}
		}
		if (!badkey)
			return 0;
		/* rebuild in order with clean keys */
		{
			json_object *tmp = json_object_new_object();
			if (!tmp)
				return -ENOMEM;
			json_object_object_foreach(o, k2, v2)
				json_object_object_add(tmp, k2, json_object_get(v2));
			while (json_object_object_length(o) > 0) {
				json_object_object_foreach(o, k3, v3) {
					(void)v3;
					json_object_object_del(o, k3);
					break;
				}
			}
			json_object_object_foreach(tmp, k4, v4) {
				c = scimg_int_json_clean_str(k4, strlen(k4));
				json_object_object_add(o, c ? c : k4, json_object_get(v4));
				free(c);
			}
			json_object_put(tmp);
		}
		return 0;
	}
	default:
		return 0;
	}
}

void scimg_int_json_clean(json_object *o)
{
	clean(o, 0);
}

/* ---- info helpers the formats use ------------------------------------- */

const char *scimg_int_qemu_format_name(const char *name)
{
	return strcmp(name, "vhd") == 0 ? "vpc" : name;
}

json_object *scimg_int_info_details(json_object *info)
{
	json_object *d;

	if (json_object_object_get_ex(info, "scimg", &d))
		return d;
	d = json_object_new_object();
	if (d)
		json_object_object_add(info, "scimg", d);
	return d;
}

json_object *scimg_int_info_specific(json_object *info, const char *type)
{
	json_object *fs = json_object_new_object(), *data = json_object_new_object();

	if (!fs || !data) {
		json_object_put(fs);
		json_object_put(data);
		return NULL;
	}
	json_object_object_add(fs, "type", json_object_new_string(type));
	json_object_object_add(fs, "data", data);
	json_object_object_add(info, "format-specific", fs);
	return data;
}

/* NAME as qemu resolves a relative backing name: joined to the directory
 * of the image's own name, as given (no "./" when it has none). */
char *scimg_int_info_join(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');
	size_t dl;
	char *s;

	if (name[0] == '/' || scimg_int_name_is_url(name) || !slash)
		return strdup(name);
	dl = (size_t)(slash - image) + 1;
	s = malloc(dl + strlen(name) + 1);
	if (s) {
		memcpy(s, image, dl);
		strcpy(s + dl, name);
	}
	return s;
}

int scimg_int_info_backing(struct scimg_image *img, json_object *info,
			   const char *name, const char *format,
			   struct scimg_image *child, const char *full_name)
{
	char *full;

	if (!name)
		return 0;
	json_object_object_add(info, "backing-filename", json_object_new_string(name));
	full = full_name ? strdup(full_name) : scimg_int_info_join(img->path, name);
	if (!full)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	json_object_object_add(info, "full-backing-filename", json_object_new_string(full));
	if (format)
		json_object_object_add(info, "backing-filename-format",
				       json_object_new_string(scimg_int_qemu_format_name(format)));
	if (child) {
		json_object *b = NULL;
		int ret = scimg_image_info(child, &b);
		if (ret < 0) {
			free(full);
			return ret;
		}
		/* named as qemu names it: the full backing file name */
		json_object_object_add(b, "filename", json_object_new_string(full));
		json_object_object_add(info, "backing-image", b);
	}
	free(full);
	return 0;
}

/* Allocated bytes of the local file behind SRC, or -1 (remote, gone). */
static int64_t allocated(const struct scimg_source *src)
{
	struct stat st;

	if (!src || strcmp(src->ops->name, "file") != 0 || stat(src->name, &st) < 0 ||
	    st.st_dev != src->dev || st.st_ino != src->ino)
		return -1;
	return (int64_t)st.st_blocks * 512;
}

void scimg_int_info_add_file(struct scimg_image *img, json_object *info,
			     const struct scimg_source *src)
{
	json_object *v;
	int64_t a;

	if (!src || (img->src && src->dev == img->src->dev && src->ino == img->src->ino))
		return;
	if ((a = allocated(src)) < 0)
		return;
	if (json_object_object_get_ex(info, "actual-size", &v))
		a += json_object_get_int64(v);
	json_object_object_add(info, "actual-size", json_object_new_int64(a));
}

/* ---- scimg_image_info -------------------------------------------------- */

int scimg_image_info(struct scimg_image *img, json_object **out)
{
	json_object *o, *spec = NULL;
	struct stat st;
	int ret;

	*out = NULL;
	o = json_object_new_object();
	if (!o)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	json_object_object_add(o, "filename", json_object_new_string(img->path));
	json_object_object_add(o, "format",
			       json_object_new_string(scimg_int_qemu_format_name(img->fmt->name)));
	json_object_object_add(o, "virtual-size", json_object_new_int64((int64_t)img->size));
	if (allocated(img->src) >= 0)
		json_object_object_add(o, "actual-size", json_object_new_int64(allocated(img->src)));
	else if (stat(img->path, &st) == 0)
		json_object_object_add(o, "actual-size",
				       json_object_new_int64((int64_t)st.st_blocks * 512));
	json_object_object_add(o, "dirty-flag", json_object_new_boolean(0));
	json_object_object_add(o, "file-length", json_object_new_int64((int64_t)img->src->size));
	if (img->raw_fallback)
		json_object_object_add(o, "format-note",
				       json_object_new_string("no format matched; read as raw"));
	if (img->depth == 0 && img->chain && img->chain->nunopened) {
		/* SCIMG_CTX_HEADER_ONLY: the files it names that were refused
		 * or missing (nothing else is said about them) */
		json_object *a = json_object_new_array();
		if (!a) {
			json_object_put(o);
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < img->chain->nunopened; i++)
			json_object_array_add(a, json_object_new_string(img->chain->unopened[i]));
		json_object_object_add(o, "unopened-files", a);
	}
	if (img->fmt->info) {
		/* a plugin's format adds its keys to one object (the plugin
		 * API); a built-in one fills the whole ImageInfo */
		if (img->fmt->plugin) {
			spec = scimg_int_info_details(o);
			ret = spec ? img->fmt->info(img, spec) : -ENOMEM;
		} else {
			ret = img->fmt->info(img, o);
		}
		if (ret < 0) {
			json_object_put(o);
			return ret == -ENOMEM && !spec && img->fmt->plugin ?
				scimg_int_err(img->ctx, ret, "out of memory") : ret;
		}
	}
	scimg_int_json_clean(o);
	*out = o;
	return 0;
}
