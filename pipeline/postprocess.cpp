#include "pipeline/postprocess.h"
