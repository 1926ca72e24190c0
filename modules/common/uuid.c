/* placeholder until implemented */
#include "uuid.h"
