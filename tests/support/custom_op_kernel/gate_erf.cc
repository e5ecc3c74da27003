// A real TFLite custom-op kernel for tests: "Erf" (what the converter emits for
// tf.math.erf with allow_custom_ops), out = erf(in) on float32 tensors.
//
// Neither ai-edge-litert nor tensorflow ships TFLite's C headers, so the few
// declarations needed are written out here. They follow
// tensorflow/lite/core/c/common.h, whose structs are "semi-ABI stable": fields
// are only ever appended. Only long-stable prefixes of TfLiteContext and
// TfLiteTensor are read; tensors are found with tflite::GetInputSafe /
// GetOutputSafe, and the op is added with tflite::MutableOpResolver::AddCustom,
// both exported by TensorFlow's libtensorflow_cc.so.2, which this library links.
#include <cmath>
#include <cstddef>
#include <cstdint>

extern "C" {
typedef struct TfLiteIntArray {
  int size;
  int data[];
} TfLiteIntArray;
typedef struct TfLiteContext TfLiteContext;
typedef struct TfLiteNode TfLiteNode;
typedef struct TfLiteTensor TfLiteTensor;
typedef struct TfLiteRegistration {
  void* (*init)(TfLiteContext*, const char*, size_t);
  void (*free)(TfLiteContext*, void*);
  int (*prepare)(TfLiteContext*, TfLiteNode*);
  int (*invoke)(TfLiteContext*, TfLiteNode*);
  const char* (*profiling_string)(const TfLiteContext*, const TfLiteNode*);
  int32_t builtin_code;
  const char* custom_name;
  int version;
  void* registration_external;
  void* (*async_kernel)(TfLiteContext*, TfLiteNode*);
  uint64_t inplace_operator;
  char reserved[64];  // zeroes for fields a newer runtime may have appended
} TfLiteRegistration;
TfLiteIntArray* TfLiteIntArrayCopy(const TfLiteIntArray* src);
}

namespace tflite {
class MutableOpResolver {
 public:
  void AddCustom(const char* name, const TfLiteRegistration* registration, int version);
};
int GetInputSafe(const TfLiteContext*, const TfLiteNode*, int, const TfLiteTensor**);
int GetOutputSafe(const TfLiteContext*, const TfLiteNode*, int, TfLiteTensor**);
}  // namespace tflite

namespace {

const int kOk = 0;
const int kError = 1;
const int kFloat32 = 1;      // kTfLiteFloat32
const int kCustomCode = 32;  // BuiltinOperator_CUSTOM

struct TensorHead {  // the first fields of TfLiteTensor
  int type;
  float* data;
  TfLiteIntArray* dims;
  float scale;
  int32_t zero_point;
  int allocation_type;
  size_t bytes;
};

struct ContextHead {  // the first fields of TfLiteContext
  size_t tensors_size;
  void* get_execution_plan;
  void* tensors;
  void* impl;
  int (*ResizeTensor)(TfLiteContext*, TfLiteTensor*, TfLiteIntArray*);
};

int Tensors(TfLiteContext* context, TfLiteNode* node, const TensorHead** in, TensorHead** out) {
  const TfLiteTensor* input;
  TfLiteTensor* output;
  if (tflite::GetInputSafe(context, node, 0, &input) != kOk ||
      tflite::GetOutputSafe(context, node, 0, &output) != kOk) {
    return kError;
  }
  *in = reinterpret_cast<const TensorHead*>(input);
  *out = reinterpret_cast<TensorHead*>(output);
  return (*in)->type == kFloat32 && (*out)->type == kFloat32 ? kOk : kError;
}

int Prepare(TfLiteContext* context, TfLiteNode* node) {
  const TensorHead* in;
  TensorHead* out;
  if (Tensors(context, node, &in, &out) != kOk) return kError;
  ContextHead* head = reinterpret_cast<ContextHead*>(context);
  return head->ResizeTensor(context, reinterpret_cast<TfLiteTensor*>(out),
                            TfLiteIntArrayCopy(in->dims));
}

int Invoke(TfLiteContext* context, TfLiteNode* node) {
  const TensorHead* in;
  TensorHead* out;
  if (Tensors(context, node, &in, &out) != kOk) return kError;
  for (size_t i = 0; i < in->bytes / sizeof(float); ++i) out->data[i] = std::erf(in->data[i]);
  return kOk;
}

TfLiteRegistration registration = {};

}  // namespace

// The registerer LiteRT calls with its op resolver (`custom_op_registerers: [GateRegisterErf]`).
extern "C" void GateRegisterErf(tflite::MutableOpResolver* resolver) {
  registration.prepare = Prepare;
  registration.invoke = Invoke;
  registration.builtin_code = kCustomCode;
  registration.custom_name = "Erf";
  registration.version = 1;
  resolver->AddCustom("Erf", &registration, 1);
}
