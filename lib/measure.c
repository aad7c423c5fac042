#include "scimg-int.h"
