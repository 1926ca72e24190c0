/* placeholder until implemented */
#include "random.h"
