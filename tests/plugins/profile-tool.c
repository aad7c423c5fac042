/* profile-tool.c - drive the provider profile API of the shared libscimg
 * for tests/cli/test-plugins.sh:
 *   profile-tool info PROFILE          print scimg_profile_info() as JSON
 *   profile-tool check PROFILE IMAGE   print the findings; exit 0 compliant,
 *                                      1 findings, 2 error */
#include <stdio.h>
#include <string.h>

#include "scimg.h"

int main(int argc, char **argv)
{
	struct scimg_ctx *ctx = scimg_ctx_new();
	struct scimg_image *img = NULL;
	json_object *o = NULL;
	int ret = 2, n;

	if (!ctx)
		return 2;
	scimg_ctx_set_flags(ctx, SCIMG_CTX_ALLOW_BACKING);
	if (argc == 3 && !strcmp(argv[1], "info")) {
		if (scimg_profile_info(ctx, argv[2], &o) == 0) {
			printf("%s\n", json_object_to_json_string(o));
			ret = 0;
		}
	} else if (argc == 4 && !strcmp(argv[1], "check")) {
		o = json_object_new_array();
		if (o && scimg_image_open(ctx, argv[3], NULL, &img) == 0 &&
		    (n = scimg_profile_check(ctx, argv[2], img, o)) >= 0) {
			printf("%s\n", json_object_to_json_string(o));
			ret = n ? 1 : 0;
		}
	} else {
		fprintf(stderr, "usage: profile-tool info PROFILE | check PROFILE IMAGE\n");
		return 2;
	}
	if (ret == 2)
		fprintf(stderr, "profile-tool: %s\n", scimg_ctx_errmsg(ctx));
	json_object_put(o);
	scimg_image_close(img);
	scimg_ctx_free(ctx);
	return ret;
}
