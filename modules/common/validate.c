/* placeholder until implemented */
#include "validate.h"
