"""A Keras model whose int8 conversion collapses, as a factory module's source text.

One hidden channel is a thousand times wider than the others and nothing downstream
reads it: per-tensor int8 quantization spends its 256 steps on that channel and the
next layer's output collapses. Kept in float, the two layers around it recover.
"""

OUTLIER_MODEL = """\
    import keras


    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8,), name="x")
        wide = keras.layers.Dense(16, activation="relu", name="wide")(inputs)
        mid = keras.layers.Dense(16, activation="relu", name="mid")(wide)
        outputs = keras.layers.Dense(4, name="out")(mid)
        model = keras.Model(inputs, outputs)
        weights, bias = model.get_layer("wide").get_weights()
        weights[:, 0] *= 1000
        model.get_layer("wide").set_weights([weights, bias])
        weights, bias = model.get_layer("mid").get_weights()
        weights[0, :] = 0
        model.get_layer("mid").set_weights([weights, bias])
        return model
    """
