/* placeholder until implemented */
#include "escape.h"
