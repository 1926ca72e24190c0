/* Image type from magic numbers. */
#include "imagesniff.h"

#include <string.h>

const char *bl_sniff_image_type(const unsigned char *data, size_t len)
{
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};

    if (!data)
        return NULL;
    if (len >= sizeof png && memcmp(data, png, sizeof png) == 0)
        return "image/png";
    if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return "image/jpeg";
    if (len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
        return "image/webp";
    return NULL;
}

const char *bl_image_extension(const char *mime)
{
    if (!mime)
        return NULL;
    if (strcmp(mime, "image/png") == 0)
        return "png";
    if (strcmp(mime, "image/jpeg") == 0)
        return "jpg";
    if (strcmp(mime, "image/webp") == 0)
        return "webp";
    return NULL;
}
