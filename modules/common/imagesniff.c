/* placeholder until implemented */
#include "imagesniff.h"
