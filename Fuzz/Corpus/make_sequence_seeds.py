# Small sequence graphs as fuzz seeds: Keras exports (tf2onnx) with 4 hidden units.
import numpy as np, keras, tf2onnx, tensorflow as tf, onnx
def export(model, path, inputs):
    spec = [tf.TensorSpec(s, tf.float32, name=n) for n, s in inputs]
    m, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
    onnx.save(m, path)
    import os; print(path, os.path.getsize(path))
v = keras.Input((None, 3), name='vitals')
export(keras.Model(v, keras.layers.Dense(1, activation='sigmoid')(keras.layers.GRU(4)(v))), 'seq_gru_loop.onnx', [('vitals', (None, None, 3))])
v = keras.Input((None, 3), name='vitals')
export(keras.Model(v, keras.layers.Dense(1, activation='sigmoid')(keras.layers.LSTM(4)(v))), 'seq_lstm.onnx', [('vitals', (None, None, 3))])
v = keras.Input((None, 3), name='vitals')
export(keras.Model(v, keras.layers.Dense(1)(keras.layers.Bidirectional(keras.layers.LSTM(3))(v))), 'seq_bilstm.onnx', [('vitals', (None, None, 3))])
s = keras.Input((2,), name='static'); v = keras.Input((None, 3), name='vitals')
x = keras.layers.Concatenate()([keras.layers.Dense(2, activation='relu')(s), keras.layers.LSTM(3)(v)])
export(keras.Model([s, v], keras.layers.Dense(1, activation='sigmoid')(x)), 'seq_two_branch.onnx', [('static', (None, 2)), ('vitals', (None, None, 3))])
