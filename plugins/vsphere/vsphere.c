/* vsphere.c - the "vsphere" provider profile: an OVA as VMware ovftool
 * writes it and vSphere/ESXi deploy (DMTF DSP0243 OVF 1.x; the tar holds
 * the OVF descriptor first, a streamOptimized VMDK, then a manifest of
 * SHA-256 digests), made by the ova format.  A VMDK on VMFS 6 is at most
 * 62 TiB; its capacity is counted in 512-byte sectors.  The guest needs the
 * driver of the disk controller the OVF declares (LSI Logic parallel SCSI
 * by default: mptspi) in its initramfs. */
#include "scimg-plugin.h"
#include "../profile-check.h"

static int vsphere_check(struct scimg_image *img, struct scimg_plugin_report *rep)
{
	char *ct;
	/* the OVA's format-specific is its disk's (qemu-img's VMDK data) */
	int ret = profile_info_differs(img, "ova", "streamOptimized", &ct,
				       "format-specific", "data", "create-type", NULL);

	if (ret > 0) {
		scimg_plugin_report(rep, "ova-disk-subformat",
				    "'%s': the OVA's disk is a %s VMDK; vSphere imports streamOptimized VMDKs from an OVA",
				    scimg_image_path(img), ct);
		free(ct);
	}
	return ret < 0 ? ret : 0;
}

static const char *const modules[] = { "mptspi", NULL };

static const struct scimg_plugin_profile vsphere = {
	SCIMG_PLUGIN_HEAD(struct scimg_plugin_profile),
	.name = "vsphere",
	.description = "VMware vSphere/ESXi: OVA (OVF + streamOptimized VMDK + SHA-256 manifest)",
	.format = "ova",
	.size_alignment = 512,
	.max_size = 62ull << 40,
	.guest_modules = modules,
	.check = vsphere_check,
};

SCIMG_PLUGIN_REGISTER(.name = "vsphere",
		      .version = "1.0",
		      .description = "provider profile for VMware vSphere/ESXi (OVA)",
		      .profiles = SCIMG_PLUGIN_PROFILES(&vsphere));
