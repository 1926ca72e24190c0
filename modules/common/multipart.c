/* placeholder until implemented */
#include "multipart.h"
