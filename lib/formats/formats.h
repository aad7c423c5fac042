/* formats.h - the format drivers known to the registry: one extern for
 * every line of formats.def (the list, in probe order). */
#ifndef SCIMG_FORMATS_H
#define SCIMG_FORMATS_H

#include "scimg-int.h"

#define SCIMG_FORMAT(sym) extern const struct scimg_format scimg_format_##sym;
#include "formats.def"
#undef SCIMG_FORMAT

#endif
