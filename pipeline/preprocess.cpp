#include "pipeline/preprocess.h"
