#include "pipeline/segment.h"
