/* Body temperatures written in free text ("fever of 38.4", "101 F",
 * "39 °C", "38,5 degrees"), for red-flag triage. Pure. */
#ifndef BL_TEMPERATURE_H
#define BL_TEMPERATURE_H

/* The highest body temperature in text (lower-case ASCII expected), in
 * degrees Celsius, or -1 when there is none. A number followed by "c",
 * "celsius" or "centigrade" is Celsius, by "f" or "fahrenheit" Fahrenheit
 * ("°", "º", "deg", "degree(s)" may come between); a number without a
 * unit counts as Celsius from 35 to 43.5 and as Fahrenheit from 95 to 110,
 * and is ignored otherwise. Results outside 30–45 °C are ignored. */
double bl_text_temperature_c(const char *text);

#endif
