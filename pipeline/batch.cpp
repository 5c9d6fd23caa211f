#include "pipeline/batch.h"
