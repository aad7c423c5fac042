/* ec2.c - provider profiles for Amazon EC2:
 * - "ec2": a streamOptimized VMDK for VM Import/Export (ImportImage,
 *   ImportSnapshot; docs.aws.amazon.com/vm-import, "Image formats"), which
 *   becomes an EBS volume: at most 16 TiB; Nitro instances need the ENA
 *   network driver and the NVMe driver for EBS (docs "Amazon EBS and NVMe",
 *   "Enable enhanced networking with ENA");
 * - "ec2-raw": the same for a raw image;
 * - "ec2-ami": an instance-store AMI bundle (ec2-bundle-image layout, the
 *   ami format; give the keys with -o), whose root device is at most
 *   10 GiB and which boots on Xen-based instance types (xen-blkfront,
 *   xen-netfront).
 * The console EC2 shows (get-console-output, serial console) is ttyS0. */
#include "scimg-plugin.h"
#include "../profile-check.h"

static int ec2_check(struct scimg_image *img, struct scimg_plugin_report *rep)
{
	char *ct;
	int ret = profile_info_differs(img, "vmdk", "streamOptimized", &ct,
				       "format-specific", "data", "create-type", NULL);

	if (ret > 0) {
		scimg_plugin_report(rep, "vmdk-subformat",
				    "'%s' is a %s VMDK; VM Import takes streamOptimized VMDKs (scimg convert --provider ec2)",
				    scimg_image_path(img), ct);
		free(ct);
	}
	return ret < 0 ? ret : 0;
}

static const char *const nitro[] = { "ena", "nvme", NULL };
static const char *const xen[] = { "xen-blkfront", "xen-netfront", NULL };

static const struct scimg_plugin_profile ec2 = {
	SCIMG_PLUGIN_HEAD(struct scimg_plugin_profile),
	.name = "ec2",
	.description = "Amazon EC2 VM Import: streamOptimized VMDK, at most 16 TiB, ENA and NVMe drivers",
	.format = "vmdk",
	.options = "subformat=streamOptimized",
	.size_alignment = 512,
	.max_size = 16ull << 40,
	.guest_modules = nitro,
	.console = "ttyS0",
	.check = ec2_check,
};

static const struct scimg_plugin_profile ec2_raw = {
	SCIMG_PLUGIN_HEAD(struct scimg_plugin_profile),
	.name = "ec2-raw",
	.description = "Amazon EC2 VM Import: raw image, at most 16 TiB, ENA and NVMe drivers",
	.format = "raw",
	.size_alignment = 512,
	.max_size = 16ull << 40,
	.guest_modules = nitro,
	.console = "ttyS0",
};

static const struct scimg_plugin_profile ec2_ami = {
	SCIMG_PLUGIN_HEAD(struct scimg_plugin_profile),
	.name = "ec2-ami",
	.description = "Amazon EC2 instance-store AMI bundle: root at most 10 GiB, Xen front ends",
	.format = "ami",
	.size_alignment = 512,
	.max_size = 10ull << 30,
	.guest_modules = xen,
	.console = "hvc0",
};

SCIMG_PLUGIN_REGISTER(.name = "ec2",
		      .version = "1.0",
		      .description = "provider profiles for Amazon EC2 (VM Import VMDK or raw, instance-store AMI)",
		      .profiles = SCIMG_PLUGIN_PROFILES(&ec2, &ec2_raw, &ec2_ami));
