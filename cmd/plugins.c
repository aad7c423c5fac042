/* plugins.c - scimg plugins: what plugins were found, loaded or refused. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s plugins [--output=human|json]\n\n"
	       "List the plugins found in $SCIMG_PLUGIN_PATH (directories or files,\n"
	       "colon separated) and in the plugin directory, %s:\n"
	       "name, version, plugin API version, file, and the formats and provider\n"
	       "profiles each adds.  Plugins that could not be loaded are listed with\n"
	       "the reason.\n\n"
	       "      --output=FMT     'human' (default) or 'json'\n"
	       "  -h, --help           show this help\n"
	       "  -V, --version        show the version\n\n"
	       "Exit status: 0 every plugin found was loaded (or skipped as a duplicate),\n"
	       "2 a plugin was refused or an error occurred.  See scimg-plugins(1).\n",
	       prog, scimg_plugins_dir());
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

static void print_list(json_object *p, const char *key, const char *label)
{
	json_object *arr;
	size_t i, n;

	if (!json_object_object_get_ex(p, key, &arr) || !arr)
		return;
	n = json_object_array_length(arr);
	if (!n)
		return;
	printf("    %s:\n", label);
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i), *v;
		int r = 0, w = 0;

		if (json_object_object_get_ex(e, "read", &v))
			r = json_object_get_boolean(v);
		if (json_object_object_get_ex(e, "write", &v))
			w = json_object_get_boolean(v);
		if (!strcmp(key, "formats"))
			printf("      %-12s (%s%s%s) %s\n", str(e, "name"), r ? "read" : "",
			       r && w ? ", " : "", w ? "write" : "", str(e, "description"));
		else
			printf("      %-12s -> %s: %s\n", str(e, "name"), str(e, "format"),
			       str(e, "description"));
	}
}

static void print_human(json_object *o)
{
	json_object *arr;
	size_t i, n;

	printf("plugin API version: %s\n", str(o, "api-version"));
	printf("plugin directory: %s\n", str(o, "plugin-dir"));
	if (str(o, "plugin-path"))
		printf("SCIMG_PLUGIN_PATH: %s\n", str(o, "plugin-path"));
	if (!json_object_object_get_ex(o, "plugins", &arr))
		return;
	n = json_object_array_length(arr);
	if (!n)
		printf("no plugins found\n");
	for (i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(arr, i);
		const char *status = str(p, "status");

		printf("\n%s %s (plugin API %s) [%s]\n", str(p, "name") ? str(p, "name") : "?",
		       str(p, "version") ? str(p, "version") : "?",
		       str(p, "api-version") ? str(p, "api-version") : "?", status);
		printf("    path: %s\n", str(p, "path"));
		if (str(p, "description"))
			printf("    %s\n", str(p, "description"));
		if (str(p, "error"))
			printf("    %s: %s\n", strcmp(status, "refused") ? "note" : "error",
			       str(p, "error"));
		print_list(p, "formats", "formats");
		print_list(p, "profiles", "provider profiles");
	}
}

int cmd_plugins(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		LONG_OPTIONS_END,
	};
	struct scimg_ctx *ctx;
	json_object *list = NULL, *arr;
	int json = 0, c, ret = EXIT_ERROR;
	size_t i, n;

	while ((c = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if ((json = output_is_json(optarg)) < 0)
				return usage_error("plugins", "--output must be 'human' or 'json', not '%s'", optarg);
			break;
		case 'h': help(); return EXIT_OK;
		case 'V': print_version(); return EXIT_OK;
		default: return bad_option("plugins", c, argv);
		}
	}
	if (optind != argc)
		return usage_error("plugins", "unexpected argument '%s'", argv[optind]);
	ctx = cmd_ctx_new();
	if (scimg_plugins_list(ctx, &list) < 0) {
		die_ctx("plugins", ctx);
		goto out;
	}
	if (json)
		printf("%s\n", json_object_to_json_string_ext(list, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_SPACED |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		print_human(list);
	ret = EXIT_OK;
	if (json_object_object_get_ex(list, "plugins", &arr)) {
		n = json_object_array_length(arr);
		for (i = 0; i < n; i++) {
			const char *s = str(json_object_array_get_idx(arr, i), "status");
			if (s && !strcmp(s, "refused")) {
				const char *path = str(json_object_array_get_idx(arr, i), "path");
				fprintf(stderr, "%s plugins: '%s' was not loaded: %s\n", prog, path,
					str(json_object_array_get_idx(arr, i), "error"));
				ret = EXIT_ERROR;
			}
		}
	}
out:
	json_object_put(list);
	scimg_ctx_free(ctx);
	return ret;
}
