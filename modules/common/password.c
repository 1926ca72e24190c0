/* placeholder until implemented */
#include "password.h"
