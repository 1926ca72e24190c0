/* placeholder until implemented */
#include "json.h"
