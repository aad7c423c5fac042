/* profile-check.h - shared by the provider profiles' check() callbacks
 * (plugins/azure, ec2, vsphere).  Header only: each plugin is a module of
 * its own and links nothing but libscimg. */
#ifndef SCIMG_PROFILE_CHECK_H
#define SCIMG_PROFILE_CHECK_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "scimg-plugin.h"

/* When IMG is of FORMAT, follow the object keys given after FOUND
 * (NULL-terminated) from the top of its info (scimg_image_info()) to a
 * value: 1 when there is one and its string is not EXPECTED, with a copy
 * of that string in *FOUND (the caller frees it); 0 when IMG is of another
 * format, a key is missing or the value is EXPECTED; -EIO when the info
 * cannot be had, -ENOMEM. */
static inline int __attribute__((sentinel))
profile_info_differs(struct scimg_image *img, const char *format,
		     const char *expected, char **found, ...)
{
	json_object *info = NULL, *o;
	const char *key, *s;
	va_list ap;
	int ret = 0;

	*found = NULL;
	if (strcmp(scimg_image_format(img), format) != 0)
		return 0;
	if (scimg_image_info(img, &info) < 0)
		return -EIO;
	o = info;
	va_start(ap, found);
	while (o && (key = va_arg(ap, const char *)) != NULL)
		if (!json_object_object_get_ex(o, key, &o))
			o = NULL;
	va_end(ap);
	if (o && strcmp(s = json_object_get_string(o), expected) != 0)
		ret = (*found = strdup(s)) ? 1 : -ENOMEM;
	json_object_put(info);
	return ret;
}

#endif
