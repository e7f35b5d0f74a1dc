// libsvm, the solver scikit-learn's SVC wraps (Debian: libsvm-dev).
#include <libsvm/svm.h>
