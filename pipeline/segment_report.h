// Issue 5: work in progress.
#pragma once
