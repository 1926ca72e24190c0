/* placeholder until implemented */
#include "base64url.h"
