/* placeholder until implemented */
#include "jwt.h"
