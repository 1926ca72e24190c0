/* placeholder until implemented */
#include "hmac.h"
