#include "pipeline/segment_report.h"
