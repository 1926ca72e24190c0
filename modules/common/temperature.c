/* Body temperatures in free text: see temperature.h. One pass over the
 * text; each number is read with what follows it. */
#include "temperature.h"

#include <string.h>

double bl_text_temperature_c(const char *s)
{
    double best = -1;
    size_t i = 0;

    while (s[i]) {
        double v, frac = 0.1;
        size_t j;
        int unit = 0;   /* 'c', 'f' or 0 */

        if (!(s[i] >= '0' && s[i] <= '9') || (i > 0 && ((s[i - 1] >= '0' && s[i - 1] <= '9')
                                                        || s[i - 1] == '.' || s[i - 1] == ','))) {
            i++;
            continue;
        }
        v = 0;
        for (j = i; s[j] >= '0' && s[j] <= '9' && j - i < 4; j++)
            v = v * 10 + (s[j] - '0');
        if ((s[j] == '.' || s[j] == ',') && s[j + 1] >= '0' && s[j + 1] <= '9') {
            for (j++; s[j] >= '0' && s[j] <= '9'; j++, frac /= 10)
                v += (s[j] - '0') * frac;
        }
        i = j;
        while (s[j] == ' ')
            j++;
        if ((unsigned char)s[j] == 0xC2 && ((unsigned char)s[j + 1] == 0xB0
                                            || (unsigned char)s[j + 1] == 0xBA))
            j += 2;
        else if (strncmp(s + j, "degrees", 7) == 0)
            j += 7;
        else if (strncmp(s + j, "degree", 6) == 0)
            j += 6;
        else if (strncmp(s + j, "deg", 3) == 0)
            j += 3;
        while (s[j] == ' ')
            j++;
        if ((s[j] == 'c' || s[j] == 'f') && !(s[j + 1] >= 'a' && s[j + 1] <= 'z'))
            unit = s[j];
        else if (strncmp(s + j, "celsius", 7) == 0 || strncmp(s + j, "centigrade", 10) == 0)
            unit = 'c';
        else if (strncmp(s + j, "fahrenheit", 10) == 0)
            unit = 'f';
        if (unit == 'f' || (unit == 0 && v >= 95 && v <= 110))
            v = (v - 32) * 5 / 9;
        else if (unit == 0 && !(v >= 35 && v <= 43.5))
            continue;
        if (v >= 30 && v <= 45 && v > best)
            best = v;
    }
    return best;
}

