/* azure.c - the "azure" provider profile: what Microsoft Azure accepts as
 * an uploaded Linux image (learn.microsoft.com, "Prepare Linux for imaging
 * in Azure"; "Create and upload a generic Linux VHD"):
 * - a fixed VHD (dynamic VHDs and VHDX are refused by Azure);
 * - a virtual size that is a whole number of MiB, at most 1023 GiB;
 * - the Hyper-V drivers hv_vmbus, hv_storvsc and hv_netvsc in the
 *   initramfs of the default kernel (the disk sits behind storvsc);
 * - the kernel console on ttyS0 (Azure's serial console and boot
 *   diagnostics read it).
 * The library checks format, alignment, size, modules and console; check()
 * below adds the VHD subtype. */
#include "scimg-plugin.h"
#include "../profile-check.h"

static int azure_check(struct scimg_image *img, struct scimg_plugin_report *rep)
{
	char *sub;
	/* another format: the format finding says it all */
	int ret = profile_info_differs(img, "vhd", "fixed", &sub,
				       "scimg", "subformat", NULL);

	if (ret > 0) {
		scimg_plugin_report(rep, "vhd-subformat",
				    "'%s' is a %s VHD; Azure accepts only fixed VHDs (scimg convert --provider azure)",
				    scimg_image_path(img), sub);
		free(sub);
	}
	return ret < 0 ? ret : 0;
}

static const char *const modules[] = { "hv_vmbus", "hv_storvsc", "hv_netvsc", NULL };

static const struct scimg_plugin_profile azure = {
	SCIMG_PLUGIN_HEAD(struct scimg_plugin_profile),
	.name = "azure",
	.description = "Microsoft Azure: fixed VHD, whole MiB, at most 1023 GiB, Hyper-V drivers",
	.format = "vhd",
	.options = "subformat=fixed,force_size=on",
	.size_alignment = 1ull << 20,
	.max_size = 1023ull << 30,
	.guest_modules = modules,
	.console = "ttyS0",
	.check = azure_check,
};

SCIMG_PLUGIN_REGISTER(.name = "azure",
		      .version = "1.0",
		      .description = "provider profile for Microsoft Azure",
		      .profiles = SCIMG_PLUGIN_PROFILES(&azure));
