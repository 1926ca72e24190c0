/* Image type from the first bytes, never from a header or file name. */
#ifndef BL_IMAGESNIFF_H
#define BL_IMAGESNIFF_H

#include <stddef.h>

/* "image/png", "image/jpeg", "image/webp", or NULL for anything else. */
const char *bl_sniff_image_type(const unsigned char *data, size_t len);
/* "png", "jpg", "webp" for the types above. */
const char *bl_image_extension(const char *mime);

#endif
