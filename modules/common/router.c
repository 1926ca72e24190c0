/* placeholder until implemented */
#include "router.h"
