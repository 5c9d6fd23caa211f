#include "pipeline/resample.h"
