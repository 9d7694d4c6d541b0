/*
 * medinfer.h - the stable C API of libmedinfer.
 *
 * MedInfer scores clinical machine-learning models: tree ensembles trained with
 * XGBoost, LightGBM and scikit-learn, with the training library's exact semantics, and
 * neural networks exported to ONNX (CNNs over images, dense and recurrent networks).
 *
 * Conventions (they hold for every function below):
 *
 *  - Status codes. Every function that can fail returns an int status:
 *    MEDINFER_OK (0) on success, one of the MEDINFER_ERR_* codes otherwise. The codes
 *    are stable across versions; new codes may be added.
 *  - Error messages. After a failure, medinfer_last_error() returns a message naming
 *    the problem (argument, file, field, expected vs. got). The message is per thread.
 *  - Ownership. Objects the library creates (models) are released with their _free
 *    function; _free(NULL) is a no-op. Buffers are owned by the caller: every output
 *    buffer comes with its length in elements, the library never writes past it, and a
 *    buffer that is too small gives MEDINFER_ERR_BUFFER_TOO_SMALL with the needed size
 *    in the message (and nothing written). Strings the library returns are owned by the
 *    object they came from and stay valid until it is freed.
 *  - Threads. A loaded medinfer_model is immutable: any number of threads may use one
 *    model at the same time without locks (until it is freed, which must not race with
 *    any other use). Running a network needs a medinfer_session, the mutable half (plans
 *    and tensor memory): one session per thread, any number per model. A stream (one
 *    growing sequence, e.g. one bed) is mutable too: used by one thread at a time, any
 *    number per model. Functions keep no global mutable state besides the per-thread
 *    error.
 *  - Bad input never crashes the host. Pointers, lengths and every field of a model file
 *    are validated; malformed or hostile files yield MEDINFER_ERR_PARSE or
 *    MEDINFER_ERR_UNSUPPORTED.
 *  - Missing values. In feature matrices, NaN means "missing" and follows each split's
 *    default direction exactly as the training library does.
 *  - Options structs begin with a size_t struct_size that the caller sets to
 *    sizeof(the struct), so that fields can be added without breaking old callers.
 */
#ifndef MEDINFER_H
#define MEDINFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. Compare with medinfer_abi_version() at run
 * time to detect a header/library mismatch. It changes only on incompatible changes. */
#define MEDINFER_ABI_VERSION 1

/* ---------------------------------------------------------------------------------- */
/* Status codes                                                                        */
/* ---------------------------------------------------------------------------------- */

#define MEDINFER_OK 0
/* An argument is invalid: a NULL pointer, zero rows, an unknown option value. */
#define MEDINFER_ERR_INVALID_ARGUMENT 1
/* A file could not be opened or read. */
#define MEDINFER_ERR_IO 2
/* A model file is malformed: bad syntax, missing or mistyped fields, bad references. */
#define MEDINFER_ERR_PARSE 3
/* A well-formed model uses something this version does not implement. */
#define MEDINFER_ERR_UNSUPPORTED 4
/* Input dimensions do not match the model (e.g. wrong feature count). */
#define MEDINFER_ERR_SHAPE_MISMATCH 5
/* An output buffer is shorter than the result; the message gives the needed length. */
#define MEDINFER_ERR_BUFFER_TOO_SMALL 6
/* Memory could not be allocated, or a size would exceed the documented limits.
 *
 * Resource limits: what a model file or an argument may make the library allocate.
 *   - Model files over 2 GiB are refused before reading. Reading a model allocates in
 *     proportion to the file (trees: at most 2^20 features, 2^20 trees, 2^28 nodes,
 *     depth 512; ONNX: 2^20 nodes, tensors of 2^30 elements, 8 levels of subgraphs);
 *     loading grows the process by at most 64 MiB beyond the file's size (measured over
 *     the fuzzing corpora: Fuzz/README.md).
 *   - Planning an ONNX graph for an input shape (on its first run with that shape)
 *     computes at most 48 MiB plus the file's size of folded constants and tables.
 *   - Running needs the plan's tensor arena, set by the input shapes, at most 2^30
 *     floats (4 GiB) per plan; explanation budgets and player counts have their own
 *     limits (MEDINFER_SHAPLEY_MAX_*).
 * Going past a limit is OUT_OF_MEMORY with a message naming it; nothing is allocated. */
#define MEDINFER_ERR_OUT_OF_MEMORY 7
/* A bug in MedInfer; please report it with the message. */
#define MEDINFER_ERR_INTERNAL 8

/* Returns MEDINFER_ABI_VERSION of the library actually loaded.
 * Thread-safe; never fails. */
int medinfer_abi_version(void);

/* Returns the library version as a static string such as "0.1.0".
 * Thread-safe; never fails; the string must not be freed. */
const char *medinfer_version(void);

/* Returns the message describing the last failure on the calling thread, or "" if the
 * last call on this thread succeeded. The string is owned by the library and stays
 * valid until the next MedInfer call on the same thread.
 * Thread-safe (each thread sees its own message); never fails. */
const char *medinfer_last_error(void);

/* Returns a static name for a status code ("MEDINFER_ERR_PARSE", ...), or
 * "MEDINFER_UNKNOWN_STATUS". Thread-safe; never fails; must not be freed. */
const char *medinfer_status_name(int status);

/* ---------------------------------------------------------------------------------- */
/* Models                                                                              */
/* ---------------------------------------------------------------------------------- */

/* A loaded model. Immutable and safe to share between threads. */
typedef struct medinfer_model medinfer_model;

/* Where a model came from (medinfer_model_kind). */
#define MEDINFER_MODEL_XGBOOST 1        /* XGBoost JSON (Booster.save_model("m.json")) */
#define MEDINFER_MODEL_LIGHTGBM 2       /* LightGBM text model (Booster.save_model("m.txt")) */
#define MEDINFER_MODEL_SKLEARN_FOREST 3 /* MedInfer forest JSON from the scikit-learn exporter */
#define MEDINFER_MODEL_ONNX 4           /* a neural network in ONNX (run with a medinfer_session) */

/* Loads a model file. The format is detected from the content (XGBoost JSON, LightGBM
 * text, MedInfer forest JSON, MedInfer tree file written by medinfer_model_save, ONNX).
 * ONNX files are memory-mapped and their weights used in place: the file must not be
 * truncated while the model is loaded. Every ONNX operator is checked at load time; an
 * unsupported one is UNSUPPORTED naming the operator and node.
 *   path       NUL-terminated file path; must not be NULL.
 *   out_model  receives the new model on success, NULL on failure; must not be NULL.
 * The caller owns the model and releases it with medinfer_model_free().
 * Errors: INVALID_ARGUMENT (NULL pointer), IO (cannot open/read, empty file),
 *   PARSE (malformed file; the message names the field), UNSUPPORTED (e.g. gblinear,
 *   linear trees), OUT_OF_MEMORY (declared sizes beyond the file or the limits).
 * Thread-safe: may be called from several threads at once. */
int medinfer_model_load(const char *path, medinfer_model **out_model);

/* Loads a model from a memory buffer holding a model file's bytes; format detection
 * and errors as for medinfer_model_load(). The buffer is not retained: the caller may
 * free it as soon as the call returns.
 *   data   the bytes; must not be NULL unless size is 0 (which is an error anyway).
 *   size   the number of bytes.
 * Thread-safe. */
int medinfer_model_load_from_memory(const void *data, size_t size, medinfer_model **out_model);

/* Writes the model as a MedInfer tree file (".mdi"): the model as loaded, in a compact
 * binary form that medinfer_model_load() reads back (format detected from its first
 * bytes) with identical predictions and explanations, but without JSON or text parsing:
 * for hosts whose cold start matters (a serverless function loads it in a fraction of
 * the time of an XGBoost JSON file). The file is versioned; a library refuses versions
 * it does not know with MEDINFER_ERR_UNSUPPORTED.
 *   path   NUL-terminated path of the file to create or replace; must not be NULL.
 * Errors: INVALID_ARGUMENT (NULL), IO (cannot create or write the file).
 * Thread-safe. */
int medinfer_model_save(const medinfer_model *model, const char *path);

/* Releases a model and everything it owns (including strings it returned).
 * medinfer_model_free(NULL) is a no-op. Must not race with any other use of the model. */
void medinfer_model_free(medinfer_model *model);

/* ---------------------------------------------------------------------------------- */
/* Model queries. All are thread-safe and fail only with INVALID_ARGUMENT (NULL         */
/* pointers, index out of range).                                                       */
/* ---------------------------------------------------------------------------------- */

/* Receives the model's source format, one of MEDINFER_MODEL_*. */
int medinfer_model_kind(const medinfer_model *model, int *out_kind);

/* Receives the number of input features (columns of every feature matrix). */
int medinfer_model_feature_count(const medinfer_model *model, size_t *out_count);

/* Receives the name of feature `index` (0-based), or NULL when the file stores no
 * feature names. The string is owned by the model. */
int medinfer_model_feature_name(const medinfer_model *model, size_t index, const char **out_name);

/* Receives the number of classes: 1 for regression and ranking models, 2 for binary
 * classifiers, K for K-class classifiers. For an ONNX model: the number of class labels
 * stored in its metadata ("labels"), 0 when it stores none. */
int medinfer_model_class_count(const medinfer_model *model, size_t *out_count);

/* Receives class label `index` of an ONNX model, from the model's metadata property
 * "labels" (comma-separated). The string is owned by the model. INVALID_ARGUMENT when
 * index >= medinfer_model_class_count(). */
int medinfer_model_class_label(const medinfer_model *model, size_t index, const char **out_label);

/* The queries below, prediction and explanation apply to tree models; on an ONNX model
 * they fail with INVALID_ARGUMENT (use a medinfer_session). */

/* Receives the objective as the training library names it, e.g. "binary:logistic"
 * (XGBoost), "binary sigmoid:1" (LightGBM), "random_forest_classifier" (scikit-learn).
 * The string is owned by the model. */
int medinfer_model_objective(const medinfer_model *model, const char **out_objective);

/* Receives the number of trees in the model. */
int medinfer_model_tree_count(const medinfer_model *model, size_t *out_count);

/* Receives the number of boosting iterations: a boosting iteration holds one tree per
 * class, times the number of parallel trees (XGBoost num_parallel_tree); a forest's
 * trees are one iteration each. Iteration limits count these. */
int medinfer_model_iteration_count(const medinfer_model *model, size_t *out_count);

/* Receives the iteration count predictions use by default: best_iteration + 1 when the
 * file records early stopping, otherwise all iterations. */
int medinfer_model_default_iteration_limit(const medinfer_model *model, size_t *out_count);

/* ---------------------------------------------------------------------------------- */
/* Prediction                                                                          */
/* ---------------------------------------------------------------------------------- */

/* What medinfer_predict() writes for each row. */
#define MEDINFER_OUTPUT_TRANSFORMED 0 /* as the training library's predict / predict_proba:
                                         probabilities, class index (multi:softmax),
                                         exp() for Poisson, the value for regression */
#define MEDINFER_OUTPUT_RAW 1         /* the untransformed margin (sum of leaves + base) */

typedef struct medinfer_predict_options {
  size_t struct_size;       /* sizeof(medinfer_predict_options) */
  int32_t output;           /* MEDINFER_OUTPUT_TRANSFORMED (default) or MEDINFER_OUTPUT_RAW */
  int32_t reserved;         /* must be 0 */
  uint64_t iteration_limit; /* use the first N boosting iterations; 0 = the model's default
                               (medinfer_model_default_iteration_limit) */
} medinfer_predict_options;

/* Fills *options with the defaults (transformed output, default iteration limit) and
 * sets struct_size. Never fails on a non-NULL pointer; ignores NULL. */
void medinfer_predict_options_init(medinfer_predict_options *options);

/* Receives the number of values medinfer_predict() writes per row for the given output
 * kind: 1 for regression, binary classifiers (the positive class probability, as
 * XGBoost and LightGBM report it) and multi:softmax class indices; K per row for
 * K-class probabilities or margins. scikit-learn classifiers report one probability per
 * class, like predict_proba. */
int medinfer_model_output_count(const medinfer_model *model, int32_t output, size_t *out_count);

/* Scores a row-major float32 matrix.
 *   features       rows * feature_count floats, row-major; NaN = missing. Must not be
 *                  NULL. +/-Inf are valid values (they follow the comparisons).
 *   rows           number of rows; must be > 0.
 *   feature_count  columns per row; must equal medinfer_model_feature_count().
 *   options        NULL for the defaults, else an initialized options struct.
 *   out            receives rows * output_count doubles, row-major.
 *   out_length     the capacity of `out` in doubles.
 * Errors: INVALID_ARGUMENT (NULL, rows == 0, bad option, iteration limit beyond the
 *   model), SHAPE_MISMATCH (feature_count), BUFFER_TOO_SMALL (out_length), OUT_OF_MEMORY
 *   (rows * columns overflows). On error `out` is left untouched.
 * Thread-safe: many threads may predict with one model at once; no locks are taken. */
int medinfer_predict(const medinfer_model *model, const float *features, size_t rows,
                     size_t feature_count, const medinfer_predict_options *options,
                     double *out, size_t out_length);

/* ---------------------------------------------------------------------------------- */
/* Explanations: exact TreeSHAP                                                         */
/* ---------------------------------------------------------------------------------- */

/* SHAP values explain the raw margin (MEDINFER_OUTPUT_RAW), as XGBoost's pred_contribs
 * and shap.TreeExplainer do: path-dependent TreeSHAP (Lundberg et al.) using the node
 * covers stored in the model file. For each row the M feature values plus the bias (the
 * expected raw output) sum to the raw margin. Calls of fewer than 64 rows compute
 * every path directly (the first one right after loading costs well under a
 * millisecond: a serverless cold start); the first call of 64 rows or more builds
 * precomputed tables once (milliseconds) that make large batches fast. The two agree
 * to about 1e-15, and which one serves a call depends only on its row count. Calls
 * find the explainer under a short per-model lock and explain in parallel. */

typedef struct medinfer_explain_options {
  size_t struct_size;       /* sizeof(medinfer_explain_options) */
  uint64_t iteration_limit; /* as in medinfer_predict_options; 0 = the model's default */
} medinfer_explain_options;

/* Fills *options with the defaults and sets struct_size. Ignores NULL. */
void medinfer_explain_options_init(medinfer_explain_options *options);

/* Writes SHAP values for a row-major float32 matrix (arguments as medinfer_predict).
 * Layout: out[(row * (M + 1) + j) * K + k] for feature j (j == M is the bias) and raw
 * output column k, where M = feature_count and K = medinfer_model_output_count(model,
 * MEDINFER_OUTPUT_RAW): rows * (M + 1) * K doubles.
 * Errors: those of medinfer_predict, plus UNSUPPORTED when the model has no node covers
 *   (the message says why SHAP needs them) and OUT_OF_MEMORY when the output size
 *   overflows size_t or the model's root-to-leaf paths exceed 2^26 splits in all.
 * Thread-safe. */
int medinfer_shap_values(const medinfer_model *model, const float *features, size_t rows,
                         size_t feature_count, const medinfer_explain_options *options,
                         double *out, size_t out_length);

/* Writes SHAP interaction values: out[((row * (M + 1) + i) * (M + 1) + j) * K + k]
 * (rows * (M + 1)^2 * K doubles). Off-diagonal entries split each pair's interaction
 * evenly (i,j) and (j,i); the diagonal holds each feature's main effect, so a row of the
 * matrix sums to that feature's SHAP value; entry [M][M] is the bias. Matches XGBoost's
 * pred_interactions and shap's shap_interaction_values. Errors and threads as
 * medinfer_shap_values. */
int medinfer_shap_interaction_values(const medinfer_model *model, const float *features,
                                     size_t rows, size_t feature_count,
                                     const medinfer_explain_options *options, double *out,
                                     size_t out_length);

/* ---------------------------------------------------------------------------------- */
/* Networks (ONNX): inputs, outputs, sessions                                          */
/* ---------------------------------------------------------------------------------- */

/* The largest tensor rank the API passes. */
#define MEDINFER_MAX_RANK 8

/* Receives the number of graph inputs of an ONNX model (initializers are not inputs).
 * Errors: INVALID_ARGUMENT (NULL, tree model). Thread-safe. */
int medinfer_network_input_count(const medinfer_model *model, size_t *out_count);

/* Receives the number of graph outputs of an ONNX model.
 * Errors: INVALID_ARGUMENT (NULL, tree model). Thread-safe. */
int medinfer_network_output_count(const medinfer_model *model, size_t *out_count);

/* Receives the name and declared shape of input `index` (0-based). `dims` receives up to
 * `capacity` dimensions, -1 for a dimension the file leaves open (dynamic batch, image
 * height and width); `out_rank` receives the rank (0 when the file declares no shape).
 * The name is owned by the model. Errors: INVALID_ARGUMENT (NULL, tree model, index out
 * of range, dims NULL with capacity > 0). Thread-safe. */
int medinfer_network_input(const medinfer_model *model, size_t index, const char **out_name,
                           int64_t *dims, size_t capacity, size_t *out_rank);

/* Receives the name and declared shape of output `index` (0-based); arguments, ownership
 * and errors as for medinfer_network_input(). Thread-safe. */
int medinfer_network_output(const medinfer_model *model, size_t index, const char **out_name,
                            int64_t *dims, size_t capacity, size_t *out_rank);

/* The mutable state for running one network: plans cached per input shape (the first
 * run with a new shape plans the graph: shape inference, constant folding, fusion, memory
 * layout; later runs reuse it) and the tensor memory. Not thread-safe: use one session
 * per thread. Holds a reference to its model, which must outlive it. */
typedef struct medinfer_session medinfer_session;

/* Creates a session for an ONNX model. Errors: INVALID_ARGUMENT (NULL, tree model).
 * Thread-safe (many sessions may be created from one model at once). */
int medinfer_session_create(const medinfer_model *model, medinfer_session **out_session);

/* Releases a session. medinfer_session_free(NULL) is a no-op. */
void medinfer_session_free(medinfer_session *session);

/* One input tensor: float32, row-major (C order). */
typedef struct medinfer_input_tensor {
  const char *name;   /* the model input's name, or NULL to take inputs in model order */
  const float *data;  /* `length` floats; must not be NULL unless length is 0 */
  size_t length;      /* elements in data; must equal the product of shape */
  size_t rank;        /* 0 .. MEDINFER_MAX_RANK */
  int64_t shape[MEDINFER_MAX_RANK];
} medinfer_input_tensor;

/* One requested output. The library fills rank and shape, then writes the values. */
typedef struct medinfer_output_tensor {
  const char *name;   /* the model output's name, or NULL for output number i (model order) */
  float *data;        /* receives the values; may be NULL when length is 0 */
  size_t length;      /* capacity of data in floats */
  size_t rank;        /* out: the output's rank */
  int64_t shape[MEDINFER_MAX_RANK]; /* out: the output's shape */
} medinfer_output_tensor;

/* Runs the network.
 *   inputs        every model input exactly once (by name, or all in model order).
 *   outputs       the outputs wanted (any subset, by name or position), each with a buffer.
 * Input shapes must match the dimensions the model fixes; open dimensions take any size.
 * rank and shape of every output are always filled when planning succeeds, so a first
 * call with data = NULL, length = 0 returns BUFFER_TOO_SMALL with the shapes filled in;
 * nothing is computed or written then.
 * Errors: INVALID_ARGUMENT (NULL, unknown or repeated names, length != product of shape,
 *   rank too large), SHAPE_MISMATCH (a dimension the model fixes, or shapes the graph
 *   cannot combine, with the node named), UNSUPPORTED (a construct known only at run
 *   time), BUFFER_TOO_SMALL, OUT_OF_MEMORY (tensors beyond the limits).
 *   Inputs with NaN or Inf are computed as IEEE arithmetic does; they are not errors.
 * Not thread-safe for one session; sessions of one model run in parallel. */
int medinfer_session_run(medinfer_session *session, const medinfer_input_tensor *inputs,
                         size_t input_count, medinfer_output_tensor *outputs, size_t output_count);

/* ---------------------------------------------------------------------------------- */
/* Images                                                                              */
/* ---------------------------------------------------------------------------------- */

#define MEDINFER_PIXELS_RGB 1  /* 3 bytes per pixel, R G B */
#define MEDINFER_PIXELS_RGBA 2 /* 4 bytes per pixel, alpha ignored */
#define MEDINFER_PIXELS_GREY 3 /* 1 byte per pixel */

/* An 8-bit image in the caller's memory. */
typedef struct medinfer_image {
  size_t struct_size;    /* sizeof(medinfer_image) */
  const uint8_t *pixels; /* first byte of the top row */
  size_t width, height;  /* in pixels; both >= 1 */
  size_t stride;         /* bytes from one row to the next; >= width * bytes per pixel */
  int32_t format;        /* MEDINFER_PIXELS_* */
  int32_t reserved;      /* must be 0 */
} medinfer_image;

/* Classifies an image with a model of one rank-4 input (NHWC or NCHW, 1 or 3
 * channels) and writes its first output (class probabilities for a softmax model).
 * Preprocessing follows the model: when it fixes its input height and width, the image
 * is resized to them (bilinear, half-pixel centres: tf.image.resize / Keras Resizing)
 * and scaled to [0, 1] (x * (1/255), Keras Rescaling); when it leaves them open, the
 * model resizes and rescales itself and gets the raw 0-255 values at the image's size.
 * Grey images are repeated to 3 channels; colour images become grey (ITU-R 601 luma)
 * for 1-channel models.
 *   probabilities    receives out_count floats; length is its capacity.
 *   out_count        receives the number of values (may be NULL).
 * Errors: INVALID_ARGUMENT (NULL, zero width or height, stride too small, unknown
 *   format, reserved != 0, struct_size too small), UNSUPPORTED (a model that is not
 *   an image model), BUFFER_TOO_SMALL (with *out_count set), plus those of
 *   medinfer_session_run. Not thread-safe for one session. */
int medinfer_classify_image(medinfer_session *session, const medinfer_image *image,
                            float *probabilities, size_t length, size_t *out_count);

/* ---------------------------------------------------------------------------------- */
/* Sequence models (LSTM, GRU): batches of uneven sequences, and per-bed streams        */
/* ---------------------------------------------------------------------------------- */

/* A sequence model is an ONNX network with one rank-3 input [batch, time, features]
 * (the sequence input; time may be open) that feeds LSTM, GRU or Loop operators, and
 * optionally other inputs of shape [batch, k] (static inputs: one row of k values per
 * sequence, e.g. sex, age, height, weight). Its first output is the prediction.
 * The prediction for a sequence of length L is what the model computes when given only
 * that sequence's first L steps. */

/* A batch of sequences, padded to a common number of steps. */
typedef struct medinfer_sequence_batch {
  size_t struct_size;     /* sizeof(medinfer_sequence_batch) */
  const float *values;    /* [batch, max_steps, features] row-major; steps past a
                             sequence's length are ignored (any value, even NaN) */
  size_t batch;           /* sequences, >= 1 */
  size_t max_steps;       /* >= 1 */
  size_t features;        /* must equal the model's feature count */
  const int64_t *lengths; /* `batch` lengths in 1 .. max_steps, or NULL: all max_steps */
  const medinfer_input_tensor *static_inputs; /* every static input, shape [batch, k] */
  size_t static_input_count;
} medinfer_sequence_batch;

/* Fills *batch with zeros and sets struct_size. Ignores NULL. */
void medinfer_sequence_batch_init(medinfer_sequence_batch *batch);

/* Runs a sequence model on a batch and writes its first output for every sequence at
 * that sequence's last step: `batch` rows of out_count / batch values, row-major.
 *   out        receives out_count floats; length is its capacity in floats.
 *   out_count  receives batch * values per sequence (may be NULL).
 * Errors: INVALID_ARGUMENT (NULL, zero batch or steps, a length outside 1..max_steps,
 *   struct_size too small, a static input missing, repeated or unknown), SHAPE_MISMATCH
 *   (features or a static row size differ from the model), UNSUPPORTED (not a sequence
 *   model), BUFFER_TOO_SMALL (with *out_count set; nothing written), plus those of
 *   medinfer_session_run. NaN and Inf inside the valid steps are computed as IEEE
 *   arithmetic does. Not thread-safe for one session. */
int medinfer_sequence_run(medinfer_session *session, const medinfer_sequence_batch *batch,
                          float *out, size_t length, size_t *out_count);

/* A stream: the state of one sequence that grows one step at a time (one bed of a
 * monitor). It holds the recurrent state (hidden and cell vectors), the static inputs
 * and the step count, a few kilobytes; the model holds everything else. Any number of
 * streams may share one model, in any number of threads, but one stream belongs to one
 * thread at a time (calls on one stream must not overlap). A stream keeps a reference to
 * its model, which must outlive it. */
typedef struct medinfer_stream medinfer_stream;

#define MEDINFER_STREAM_AUTO 0      /* exact for unidirectional models, else window */
#define MEDINFER_STREAM_WINDOW 1    /* recompute the last `window` steps on every push */

typedef struct medinfer_stream_options {
  size_t struct_size;  /* sizeof(medinfer_stream_options) */
  int32_t mode;        /* MEDINFER_STREAM_AUTO (default) or MEDINFER_STREAM_WINDOW */
  int32_t reserved;    /* must be 0 */
  size_t window;       /* steps kept for window mode, 1 .. 4096 (default 48) */
  /* Added after 0.1.0 (callers built against older headers pass a smaller struct_size and get
   * the default): */
  size_t explain_steps; /* recent steps medinfer_stream_explain may explain, 0 .. 4096
                           (default 0: no explanations, nothing extra kept). An exact
                           stream keeps these samples and the state before each of them:
                           (features + state size) floats per step. */
} medinfer_stream_options;

/* Fills *options with the defaults and sets struct_size. Ignores NULL. */
void medinfer_stream_options_init(medinfer_stream_options *options);

/* Creates a stream at step 0. In AUTO mode a model whose recurrent operators all run
 * forward advances in O(1) work per step: the output after step t equals
 * medinfer_sequence_run on steps 0..t. A model with a bidirectional or reverse
 * recurrence (whose output for a prefix depends on the whole prefix) uses WINDOW mode:
 * every push reruns the model on the last `window` steps, so the output equals the
 * batch output on steps max(0, t-window+1)..t.
 *   options    may be NULL for the defaults.
 * Errors: INVALID_ARGUMENT (NULL, bad options), UNSUPPORTED (not a sequence model, or a
 *   graph that cannot run one step at a time, with the reason). Thread-safe. */
int medinfer_stream_create(const medinfer_model *model, const medinfer_stream_options *options,
                           medinfer_stream **out_stream);

/* Releases a stream. medinfer_stream_free(NULL) is a no-op. */
void medinfer_stream_free(medinfer_stream *stream);

/* Sets the static input `name` (NULL: the only static input) to `count` values: one row
 * of that input. Static inputs must all be set before the first push; setting one later
 * applies from the next push on (already-consumed steps are not recomputed).
 * Errors: INVALID_ARGUMENT (NULL, unknown name, NULL name with several static inputs, a
 *   NaN or infinite value: nothing is changed), SHAPE_MISMATCH (count differs from the
 *   input's row size). Not thread-safe for one stream. */
int medinfer_stream_set_static(medinfer_stream *stream, const char *name, const float *values,
                               size_t count);

/* Appends one time step (`count` feature values) and writes the model's first output for
 * the sequence so far into out (out_count values, e.g. one risk).
 *   model      the model the stream was created from (checked: a stream of another model
 *              is INVALID_ARGUMENT).
 *   out_count  receives the number of output values (may be NULL).
 * A rejected sample leaves the stream exactly as it was, so the caller may skip it and go
 * on. Errors: INVALID_ARGUMENT (NULL, another model's stream, a static input not set),
 *   SHAPE_MISMATCH (count differs from the feature count), MEDINFER_ERR_INVALID_ARGUMENT
 *   also for a NaN or infinite value (named by index), BUFFER_TOO_SMALL (with *out_count
 *   set; the step is not consumed). Not thread-safe for one stream; streams of one model
 *   run in parallel. */
int medinfer_stream_push(const medinfer_model *model, medinfer_stream *stream,
                         const float *sample, size_t count, float *out, size_t length,
                         size_t *out_count);

/* Receives the number of steps the stream has consumed since creation or reset (rejected
 * samples do not count). Errors: INVALID_ARGUMENT (NULL). */
int medinfer_stream_steps(const medinfer_stream *stream, uint64_t *out_steps);

/* Returns the stream to step 0 (zero recurrent state, window emptied). Static inputs are
 * kept. Errors: INVALID_ARGUMENT (NULL). Not thread-safe for one stream. */
int medinfer_stream_reset(medinfer_stream *stream);

/* ---------------------------------------------------------------------------------- */
/* Shapley explanations of networks                                                    */
/* ---------------------------------------------------------------------------------- */

/* A network explanation splits its input into players (a vital-sign channel, a static
 * feature, an image segment) and reports each player's Shapley value for every value of
 * the model's first output: how much having the player's real values, instead of the
 * background's, moves the output. This is baseline (interventional) Shapley: the value
 * of a coalition S of players is the model's output on an input that takes S's values
 * from the explained input and every other player's values from the background,
 * averaged over the background rows. Values plus the base value (the value of the empty
 * coalition) sum to the output on the explained input (additivity), exactly for exact
 * values and for permutation sampling alike, up to float rounding (1e-5 is tested).
 *
 * Results are doubles, (players + 1) rows of K values, row-major: row p holds player p's
 * value for each of the K output values; the last row holds the base value. */

#define MEDINFER_SHAPLEY_AUTO 0        /* EXACT up to 16 players, else PERMUTATION */
#define MEDINFER_SHAPLEY_EXACT 1       /* all 2^players coalitions (at most 20 players) */
#define MEDINFER_SHAPLEY_PERMUTATION 2 /* random permutations in antithetic pairs */

/* The most players an exact explanation takes, and the most model evaluations (coalitions
 * x background rows) one explanation may cost; beyond them calls fail with
 * INVALID_ARGUMENT naming the limit, before any work. */
#define MEDINFER_SHAPLEY_MAX_EXACT_PLAYERS 20
#define MEDINFER_SHAPLEY_MAX_EVALUATIONS 1048576

typedef struct medinfer_shapley_options {
  size_t struct_size;   /* sizeof(medinfer_shapley_options) */
  int32_t method;       /* MEDINFER_SHAPLEY_* (default AUTO) */
  int32_t reserved;     /* must be 0 */
  size_t budget;        /* PERMUTATION: model evaluations per background row, at least
                           2 * players (default 1000). Each permutation of the players costs
                           players - 1 evaluations (the empty and the full coalition are
                           shared), so budget - 2 is split into whole permutations. */
  uint64_t seed;        /* PERMUTATION: seeds the permutations; same seed, same values */
  size_t time_windows;  /* sequences: players per channel, one per window (default 1) */
  size_t window_steps;  /* sequences: steps per window, the windows ending at the last step;
                           0 (default) splits the explained steps evenly, the earliest
                           window taking the remainder. Steps before the first window are
                           never masked. */
} medinfer_shapley_options;

/* Fills *options with the defaults and sets struct_size. Ignores NULL. */
void medinfer_shapley_options_init(medinfer_shapley_options *options);

/* Explains a sequence model's first output for one sequence.
 * Players, in this order: every column of every static input (inputs in model order),
 * then for each time window (earliest first) every feature channel of the sequence.
 *   sequence    batch 1; its length (lengths[0], or max_steps) is the sequence explained.
 *   background  batch B >= 1 reference sequences with B static rows; max_steps equal to
 *               the explained length (masked steps take the reference's values at the
 *               same step) or 1 (one reference sample for every step); lengths must be
 *               NULL. Every coalition costs B model evaluations.
 *   options     may be NULL for the defaults.
 *   values      receives (players + 1) * K doubles, see above; length is its capacity.
 *   out_players, out_outputs  receive players and K (each may be NULL).
 * Coalitions run batched through the session's network; forward-only recurrences start
 * every coalition from the state after the unmasked prefix, computed once.
 * Errors: those of medinfer_sequence_run for either batch, INVALID_ARGUMENT (NULL,
 *   batch != 1, background lengths given, NaN or Inf in sequence, background or statics,
 *   windows longer than the sequence, EXACT with more than
 *   MEDINFER_SHAPLEY_MAX_EXACT_PLAYERS players, a budget below 2 * players, more than
 *   MEDINFER_SHAPLEY_MAX_EVALUATIONS evaluations), SHAPE_MISMATCH (background
 *   max_steps, features or static widths), BUFFER_TOO_SMALL (with the counts set; nothing
 *   computed). Not thread-safe for one session. */
int medinfer_explain_sequence(medinfer_session *session, const medinfer_sequence_batch *sequence,
                              const medinfer_sequence_batch *background,
                              const medinfer_shapley_options *options, double *values,
                              size_t length, size_t *out_players, size_t *out_outputs);

/* Explains the stream's latest output: players are the feature channels over the stream's
 * most recent steps, one per channel per time window (options->time_windows and
 * window_steps as above, counted back from the latest step; the explained steps must fit
 * in the stream's explain_steps and in the steps consumed). A removed channel takes the
 * reference sample's value at every explained step; the static inputs keep the stream's
 * values; earlier steps are the stream's own history (its state). The stream is read,
 * never changed: the next push continues as if no explanation had been asked for.
 *   model      the stream's model (another model's stream is INVALID_ARGUMENT).
 *   reference  `count` values, one per feature (e.g. normal vital signs).
 * Results as for medinfer_explain_sequence. Errors: INVALID_ARGUMENT (NULL, another
 *   model's stream, explain_steps 0 at creation, more steps asked than kept or consumed,
 *   a NaN or infinite reference, limits as above), SHAPE_MISMATCH (count),
 *   BUFFER_TOO_SMALL. Not thread-safe for one stream (it borrows a pooled session of the
 *   model; other streams of the model may push or explain in parallel). */
int medinfer_stream_explain(const medinfer_model *model, const medinfer_stream *stream,
                            const float *reference, size_t count,
                            const medinfer_shapley_options *options, double *values,
                            size_t length, size_t *out_players, size_t *out_outputs);

#define MEDINFER_MASK_MEAN 0 /* a removed segment takes the image's mean colour */
#define MEDINFER_MASK_BLUR 1 /* a removed segment takes a box-blurred copy of the image */

typedef struct medinfer_image_explain_options {
  size_t struct_size;      /* sizeof(medinfer_image_explain_options) */
  size_t grid_rows;        /* segments: a regular grid over the image (default 8 x 8) */
  size_t grid_cols;
  const int32_t *segments; /* or the caller's segmentation: width * height labels
                              (row-major, image pixels) in 0 .. segment_count - 1, every
                              label used; NULL for the grid */
  size_t segment_count;
  int32_t masker;          /* MEDINFER_MASK_MEAN (default) or MEDINFER_MASK_BLUR */
  int32_t method;          /* MEDINFER_SHAPLEY_* (default AUTO) */
  size_t blur_radius;      /* BLUR: box half-width in model-input pixels; 0 (default):
                              the larger model-input side / 16 */
  size_t budget;           /* PERMUTATION: model evaluations (default 1000, >= 2 * segments) */
  uint64_t seed;           /* PERMUTATION: seeds the permutations */
} medinfer_image_explain_options;

/* Fills *options with the defaults and sets struct_size. Ignores NULL. */
void medinfer_image_explain_options_init(medinfer_image_explain_options *options);

/* Explains an image model's first output (e.g. class probabilities) over image segments.
 * The image is preprocessed as medinfer_classify_image does; masking happens on the model
 * input: a model-input pixel belongs to the segment of the image pixel it is sampled
 * nearest to, and a removed segment's pixels take the masker's values (the mean colour or
 * the blurred image, both of the model input).
 *   segment_values  receives (segments + 1) * K doubles (values then the base value, as
 *                   above); segment_length is its capacity.
 *   pixel_values    optional (NULL with pixel_length 0): receives height * width * K
 *                   floats, row-major over the image's pixels, each pixel holding its
 *                   segment's values: the per-pixel attribution map for an overlay.
 *   out_segments, out_outputs  receive the segment count and K (each may be NULL).
 * Cost: a convolutional model on a large image (about 200 x 200 model-input pixels and up,
 * or a model fixed to batch 1) keeps every tensor of the previous coalition and re-runs
 * only what the changed segments reach (permutation sampling changes one segment at a
 * time): on the seed CNN about 0.5 ms per evaluation instead of 5 ms. It uses memory for
 * all of the network's tensors at once (up to 256 MB; more runs whole). Values equal
 * whole runs up to float rounding (2e-7); MEDINFER_IMAGE_REGIONAL=0 in the environment
 * turns it off.
 * Errors: those of medinfer_classify_image, INVALID_ARGUMENT (bad options, a label out of
 *   range, an unused label, grid larger than the image, limits as for
 *   medinfer_explain_sequence), BUFFER_TOO_SMALL (with the counts set; nothing computed).
 * Not thread-safe for one session. */
int medinfer_explain_image(medinfer_session *session, const medinfer_image *image,
                           const medinfer_image_explain_options *options,
                           double *segment_values, size_t segment_length, float *pixel_values,
                           size_t pixel_length, size_t *out_segments, size_t *out_outputs);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MEDINFER_H */
