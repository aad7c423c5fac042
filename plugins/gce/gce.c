/* gce.c - the "gce" provider profile: the file Google Compute Engine
 * imports as a custom image (cloud.google.com/compute/docs/import/
 * import-existing-image): a gzip-compressed tar, GNU format, holding one
 * sparse file named exactly "disk.raw" whose size is a whole number of GiB
 * (the gce-tar format).  The guest needs virtio_scsi for its disk and
 * virtio_net for its network in the default initramfs, and its console on
 * ttyS0 (the serial port GCE shows). */
#include "scimg-plugin.h"

static const char *const modules[] = { "virtio_scsi", "virtio_net", NULL };

static const struct scimg_plugin_profile gce = {
	SCIMG_PLUGIN_HEAD(struct scimg_plugin_profile),
	.name = "gce",
	.description = "Google Compute Engine: disk.raw in a gzip'd GNU sparse tar, whole GiB, virtio",
	.format = "gce-tar",
	.size_alignment = 1ull << 30,
	.guest_modules = modules,
	.console = "ttyS0",
};

SCIMG_PLUGIN_REGISTER(.name = "gce",
		      .version = "1.0",
		      .description = "provider profile for Google Compute Engine (disk.raw in a tar.gz)",
		      .profiles = SCIMG_PLUGIN_PROFILES(&gce));
